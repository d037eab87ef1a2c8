// The conversation component shared by the battle, side-by-side and direct-chat tabs, with the
// HTTP helpers and the server-sent-events reader it streams answers through (docs/ARENA_API.md).
// Model and user text only ever reach the page through textContent or Markdown.render (which
// builds DOM nodes); never as an HTML string.
//
// Loaded after markdown.js and before catalog.js, leaderboard.js and app.js (the vote's reveal
// uses Arena.Catalog); exposes window.Arena:
//   $, el, ApiError, request, getJson, postJson, readEvents, Conversation.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- HTTP helpers -------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status || 0;
      this.code = code || null;
    }
  }

  async function errorFrom(res) {
    let message = `The server answered ${res.status} ${res.statusText || ''}`.trim();
    let code = null;
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) {
        message = String(body.error.message);
        code = body.error.code || null;
      }
    } catch (_) { /* not JSON: keep the status line */ }
    if (res.status === 429) {
      const wait = res.headers.get('Retry-After');
      message += wait ? ` Please try again in ${wait} seconds.` : ' Please try again later.';
    }
    return new ApiError(message, res.status, code);
  }

  async function request(method, path, body, signal, accept = 'application/json') {
    const init = { method, signal, headers: { Accept: accept } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  const getJson = async (path) => (await request('GET', path)).json();
  const postJson = async (path, body, signal) => (await request('POST', path, body, signal)).json();

  // Server-sent events from a fetch() response: one JSON object per `data:` event.
  async function readEvents(res, onEvent) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    const flush = (block) => {
      const data = block.split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data) return;
      let ev;
      try { ev = JSON.parse(data); } catch (_) { return; }
      if (ev && typeof ev === 'object') onEvent(ev);
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf = (buf + decoder.decode(value, { stream: true })).replace(/\r\n/g, '\n');
      let idx;
      while ((idx = buf.indexOf('\n\n')) >= 0) {
        flush(buf.slice(0, idx));
        buf = buf.slice(idx + 2);
      }
    }
    buf += decoder.decode();
    if (buf.trim()) flush(buf.replace(/\r\n/g, '\n'));
  }

  // ---- one conversation: battle (two sides) or direct chat (one side) ------------------

  const WINNERS = { a: 'model_a', b: 'model_b', tie: 'tie', bothbad: 'tie (bothbad)' };

  class Conversation {
    // opts: prefix, sides (['a','b'] or ['a']), base ('battles' | 'chats'),
    //       create(signal) -> {id, ...}, sideName(side) -> label used in messages,
    //       locked (input and Send stay disabled until setLocked(false): the terms of use)
    constructor(opts) {
      this.opts = opts;
      const p = opts.prefix;
      this.sides = opts.sides;
      this.locked = !!opts.locked;
      this.maxChars = 0;
      this.panes = {};
      this.names = {};
      for (const s of this.sides) {
        this.panes[s] = $(`${p}-${s}`);
        this.names[s] = $(`${p}-name-${s}`);
      }
      this.input = $(`${p}-input`);
      this.sendBtn = $(`${p}-send`);
      this.regenBtn = $(`${p}-regenerate`);
      this.errorBox = $(`${p}-error`);
      this.noticeBox = $(`${p}-notice`);
      this.paramInputs = {
        temperature: $(`${p}-temperature`),
        top_p: $(`${p}-top-p`),
        max_tokens: $(`${p}-max-tokens`),
      };
      this.voteBtns = {};
      if (opts.base === 'battles') {
        for (const k of Object.keys(WINNERS)) {
          this.voteBtns[k] = $(`${p}-vote-${k}`);
          this.voteBtns[k].addEventListener('click', () => this.vote(k));
        }
      }
      this.rateBtns = {};
      if (opts.base === 'chats') {
        for (const k of ['upvote', 'downvote', 'flag']) {
          this.rateBtns[k] = $(`${p}-${k}`);
          this.rateBtns[k].addEventListener('click', () => this.rate(k));
        }
      }
      this.sendBtn.addEventListener('click', () => this.send());
      this.regenBtn.addEventListener('click', () => this.regenerate());
      for (const id of [`${p}-new`, `${p}-clear`]) {
        const b = $(id);
        if (b) b.addEventListener('click', () => { this.reset(); this.input.focus(); });
      }
      this.input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
          e.preventDefault();
          this.send();
        }
      });
      this.dirty = new Map(); // answer -> side, rendered on the next animation frame
      this.raf = 0;
      this.epoch = 0;
      this.abort = null;
      this.reset();
    }

    reset() {
      if (this.abort) this.abort.abort();
      this.abort = null;
      this.epoch++;
      this.id = null;
      this.turns = [];
      this.busy = false;   // creating, streaming, voting or rating
      this.voted = false;
      this.rated = false;
      this.dirty.clear();
      for (const s of this.sides) {
        this.panes[s].replaceChildren();
        if (this.names[s]) {
          this.names[s].textContent = this.opts.sideName(s);
          this.names[s].classList.remove('revealed');
        }
      }
      this.hideBanners();
      this.input.disabled = false;
      this.update();
    }

    setLocked(locked) {
      this.locked = locked;
      this.update();
    }

    hideBanners() {
      this.errorBox.hidden = true;
      this.errorBox.replaceChildren();
      if (this.noticeBox) {
        this.noticeBox.hidden = true;
        this.noticeBox.replaceChildren();
      }
    }

    showError(message) {
      this.errorBox.appendChild(el('div', null, message));
      this.errorBox.hidden = false;
    }

    showNotice(message) {
      this.noticeBox.replaceChildren(el('div', null, message));
      this.noticeBox.hidden = false;
    }

    params() {
      const out = {};
      for (const [key, input] of Object.entries(this.paramInputs)) {
        if (!input || input.value.trim() === '') continue;
        const v = Number(input.value);
        if (Number.isFinite(v)) out[key] = key === 'max_tokens' ? Math.round(v) : v;
      }
      return out;
    }

    last() {
      return this.turns[this.turns.length - 1] || null;
    }

    // Every side of the latest turn has ended with an end or error event.
    settled(statuses) {
      const t = this.last();
      return !!t && this.sides.every((s) => statuses.includes(t.ans[s].status));
    }

    update() {
      const idle = !this.busy;
      this.sendBtn.disabled = !idle || this.voted || this.locked;
      this.input.disabled = this.voted || this.locked;
      this.regenBtn.disabled = !idle || this.voted || !this.settled(['end', 'error', 'lost']);
      const canVote = idle && !this.voted && this.settled(['end']);
      for (const b of Object.values(this.voteBtns)) b.disabled = !canVote;
      const t = this.last();
      const canRate = idle && !this.rated && !!t && t.ans.a.status === 'end';
      for (const b of Object.values(this.rateBtns)) b.disabled = !canRate;
    }

    // ---- rendering

    addTurn(text) {
      const turn = { text, ans: {} };
      for (const s of this.sides) {
        const user = el('div', 'msg msg-user');
        user.appendChild(el('div', 'msg-body', text));
        const bot = el('div', 'msg msg-bot');
        const body = el('div', 'msg-body md');
        const foot = el('div', 'msg-foot');
        bot.append(body, foot);
        this.panes[s].append(user, bot);
        turn.ans[s] = { text: '', status: 'streaming', body, foot, user, bot };
        this.renderAnswer(turn.ans[s]);
      }
      this.turns.push(turn);
      for (const s of this.sides) this.panes[s].scrollTop = this.panes[s].scrollHeight;
      return turn;
    }

    removeTurn(turn) {
      for (const s of this.sides) {
        turn.ans[s].user.remove();
        turn.ans[s].bot.remove();
      }
      this.turns = this.turns.filter((t) => t !== turn);
    }

    renderAnswer(ans) {
      ans.bot.classList.toggle('streaming', ans.status === 'streaming');
      ans.bot.classList.toggle('failed', ans.status === 'error' || ans.status === 'lost');
      if (ans.text) ans.body.replaceChildren(window.Markdown.render(ans.text));
      else ans.body.replaceChildren(el('span', 'typing', ans.status === 'streaming' ? '…' : ''));
      ans.foot.replaceChildren();
      if (ans.status === 'error') ans.foot.appendChild(el('span', 'foot-error', `⚠️ Error: ${ans.error}`));
      if (ans.status === 'lost') ans.foot.appendChild(el('span', 'foot-error', '⚠️ Connection lost'));
      if (ans.status === 'end' && ans.finish === 'length') {
        ans.foot.appendChild(el('span', 'foot-note', 'Stopped at the max-tokens limit.'));
      }
    }

    markDirty(side, ans) {
      this.dirty.set(ans, side);
      if (!this.raf) this.raf = requestAnimationFrame(() => this.flush());
    }

    flush() {
      if (this.raf) cancelAnimationFrame(this.raf);
      this.raf = 0;
      const items = Array.from(this.dirty);
      this.dirty.clear();
      for (const [ans, side] of items) {
        const pane = this.panes[side];
        const atBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 48;
        this.renderAnswer(ans);
        if (atBottom) pane.scrollTop = pane.scrollHeight;
      }
    }

    // ---- actions

    async send() {
      const text = this.input.value;
      if (this.busy || this.voted || this.locked || !text.trim()) return;
      if (this.maxChars && text.length > this.maxChars) {
        this.hideBanners();
        this.showError(`Your message is too long: ${text.length} characters, the limit is ${this.maxChars}.`);
        return;
      }
      this.hideBanners();
      this.input.value = '';
      const turn = this.addTurn(text);
      const ok = await this.stream('turns', { text, ...this.params() }, turn);
      if (!ok) {
        // The turn was refused: take it back and give the text back to the user.
        this.removeTurn(turn);
        if (!this.input.value) this.input.value = text;
        this.update();
      }
    }

    async regenerate() {
      const turn = this.last();
      if (this.busy || this.voted || !turn || !this.id) return;
      this.hideBanners();
      const old = {};
      for (const s of this.sides) {
        const a = turn.ans[s];
        old[s] = { text: a.text, status: a.status, error: a.error, finish: a.finish };
        Object.assign(a, { text: '', status: 'streaming', error: null, finish: null });
        this.renderAnswer(a);
      }
      const ok = await this.stream('regenerate', this.params(), turn);
      if (!ok) {
        for (const s of this.sides) {
          Object.assign(turn.ans[s], old[s]);
          this.renderAnswer(turn.ans[s]);
        }
        this.update();
      }
    }

    // Runs one streamed request. Returns false when the server refused it before streaming
    // (the caller undoes its changes), true once the stream started.
    async stream(action, body, turn) {
      const epoch = this.epoch;
      const ctrl = new AbortController();
      this.abort = ctrl;
      this.busy = true;
      this.rated = false;
      this.update();
      const stale = () => epoch !== this.epoch;
      let res;
      try {
        if (!this.id) {
          const created = await this.opts.create(ctrl.signal);
          if (stale()) return true;
          this.id = created.id;
          if (this.opts.onCreated) this.opts.onCreated(created, this);
        }
        res = await request('POST', `/api/${this.opts.base}/${encodeURIComponent(this.id)}/${action}`, body, ctrl.signal,
          'text/event-stream');
      } catch (e) {
        if (stale()) return true;
        this.busy = false;
        this.abort = null;
        this.showError(e instanceof ApiError ? e.message : `Could not reach the server: ${e.message}`);
        if (e.code === 'battle_closed') this.voted = true;
        return false;
      }
      if (stale()) return true;

      let gotDone = false;
      try {
        await readEvents(res, (ev) => {
          if (stale()) return;
          const ans = ev.side ? turn.ans[ev.side] : null;
          if (ev.type === 'delta' && ans && ans.status === 'streaming') {
            ans.text += typeof ev.text === 'string' ? ev.text : '';
            this.markDirty(ev.side, ans);
          } else if (ev.type === 'end' && ans) {
            ans.status = 'end';
            ans.finish = ev.finish_reason;
            this.markDirty(ev.side, ans);
            this.flush();
          } else if (ev.type === 'error' && ans) {
            ans.status = 'error';
            ans.error = String(ev.message || 'unknown error');
            this.markDirty(ev.side, ans);
            this.flush();
            this.showError(`${this.opts.sideName(ev.side)} failed: ${ans.error}`);
          } else if (ev.type === 'done') {
            gotDone = true;
          }
        });
      } catch (e) {
        if (stale()) return true;
        this.showError(`The connection was lost while the answer was streaming (${e.message}).`);
        gotDone = true; // already reported
      }
      if (stale()) return true;
      let lost = false;
      for (const s of this.sides) {
        if (turn.ans[s].status === 'streaming') {
          turn.ans[s].status = 'lost';
          lost = true;
          this.markDirty(s, turn.ans[s]);
        }
      }
      if (lost && !gotDone) this.showError('The connection was lost before the answer finished.');
      this.flush();
      this.busy = false;
      this.abort = null;
      this.update();
      return true;
    }

    async vote(key) {
      if (this.busy || this.voted || !this.id) return;
      const epoch = this.epoch;
      this.busy = true;
      this.update();
      try {
        const r = await postJson(`/api/battles/${encodeURIComponent(this.id)}/vote`, { winner: WINNERS[key] });
        if (epoch !== this.epoch) return; // a new round started meanwhile
        this.voted = true;
        this.errorBox.hidden = true;
        this.errorBox.replaceChildren();
        window.Arena.Catalog.reveal(this.names.a, 'Model A', r.model_a, r.info_a);
        window.Arena.Catalog.reveal(this.names.b, 'Model B', r.model_b, r.info_b);
        this.names.a.classList.add('revealed');
        this.names.b.classList.add('revealed');
        if (r.counted === false) {
          const reason = String(r.reason || 'no reason given').replace(/[.\s]+$/, '');
          this.showNotice(`Your vote was recorded but does not count for the leaderboard: ${reason}. ` +
            'Press “New round” to play again.');
        } else {
          this.showNotice('Thanks for voting! Press “New round” to battle two new models.');
        }
      } catch (e) {
        if (epoch !== this.epoch) return;
        this.showError(e.message);
        if (e.status === 409 && /vote|closed/i.test(e.message + (e.code || ''))) this.voted = true;
      }
      this.busy = false;
      this.update();
    }

    async rate(kind) {
      if (this.busy || this.rated || !this.id) return;
      const epoch = this.epoch;
      this.busy = true;
      this.update();
      try {
        await postJson(`/api/chats/${encodeURIComponent(this.id)}/rating`, { rating: kind });
        if (epoch !== this.epoch) return;
        this.rated = true;
        this.showNotice(kind === 'flag' ? 'Thanks, the answer was flagged for review.' : 'Thanks for your feedback!');
      } catch (e) {
        if (epoch !== this.epoch) return;
        this.showError(e.message);
      }
      this.busy = false;
      this.update();
    }
  }

  window.Arena = Object.assign(window.Arena || {}, {
    $, el, ApiError, request, getJson, postJson, readEvents, Conversation,
  });
})();
