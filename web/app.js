// The arena page: tabs, config loading, the terms of use, and the wiring of the three
// conversations (conversation.js) and the leaderboard (leaderboard.js). Talks to the routes in
// docs/ARENA_API.md. Loaded last: markdown.js, conversation.js, catalog.js, leaderboard.js, app.js.
'use strict';
(function () {
  const { $, el, ApiError, getJson, postJson, Conversation, Leaderboard } = window.Arena;

  // ---- config: the terms of use at start; models and limits for the side-by-side and
  // direct tabs (the battle tab never shows the model names it holds)

  let configPromise = null;
  function loadConfig() {
    if (!configPromise) {
      configPromise = getJson('/api/config').catch((e) => {
        configPromise = null; // try again next time the tab opens
        throw e;
      });
    }
    return configPromise;
  }

  function fillSelect(select, models, preferred) {
    const keep = select.value;
    select.replaceChildren();
    if (!models.length) {
      select.appendChild(el('option', null, 'No models available')).value = '';
      return;
    }
    for (const m of models) select.appendChild(el('option', null, m)).value = m;
    select.value = models.includes(keep) ? keep : (models.includes(preferred) ? preferred : models[0]);
  }

  // ---- the three conversations --------------------------------------------------------

  const battleSideName = (s) => `Model ${s.toUpperCase()}`;

  const battle = new Conversation({
    prefix: 'battle',
    sides: ['a', 'b'],
    base: 'battles',
    sideName: battleSideName,
    create: (signal) => postJson('/api/battles', { mode: 'anonymous' }, signal),
    locked: true,
  });

  const sbsA = $('sbs-model-a');
  const sbsB = $('sbs-model-b');
  const sbs = new Conversation({
    prefix: 'sbs',
    sides: ['a', 'b'],
    base: 'battles',
    sideName: battleSideName,
    create: (signal) => {
      if (!sbsA.value || !sbsB.value) throw new ApiError('Pick two models first.');
      return postJson('/api/battles', { mode: 'named', model_a: sbsA.value, model_b: sbsB.value }, signal);
    },
    locked: true,
    onCreated: (r, conv) => {
      if (r.model_a) conv.names.a.textContent = `Model A: ${r.model_a}`;
      if (r.model_b) conv.names.b.textContent = `Model B: ${r.model_b}`;
    },
  });

  const directModel = $('direct-model');
  const direct = new Conversation({
    prefix: 'direct',
    sides: ['a'],
    base: 'chats',
    sideName: () => directModel.value || 'The model',
    create: (signal) => {
      if (!directModel.value) throw new ApiError('Pick a model first.');
      return postJson('/api/chats', { model: directModel.value }, signal);
    },
    locked: true,
  });

  // Changing a model starts a new conversation with it.
  for (const [select, conv] of [[sbsA, sbs], [sbsB, sbs], [directModel, direct]]) {
    select.addEventListener('change', () => conv.reset());
  }

  async function initModels(conv) {
    let cfg;
    try {
      cfg = await loadConfig();
    } catch (e) {
      conv.hideBanners();
      conv.showError(`Could not load the list of models: ${e.message}`);
      return;
    }
    const models = Array.isArray(cfg.models) ? cfg.models.map(String) : [];
    if (conv === sbs) {
      fillSelect(sbsA, models, models[0]);
      fillSelect(sbsB, models, models[1]);
    } else {
      fillSelect(directModel, models, models[0]);
    }
    conv.maxChars = Number(cfg.max_message_chars) || 0;
    if (conv.maxChars) conv.input.maxLength = conv.maxChars;
    const sampling = cfg.sampling || {};
    for (const [key, input] of Object.entries(conv.paramInputs)) {
      // Only replace the page's defaults, never something the user typed.
      if (input && sampling[key] != null && input.value === input.defaultValue) {
        input.value = input.defaultValue = String(sampling[key]);
      }
    }
    conv.reset();
  }

  // ---- terms of use -------------------------------------------------------------------
  // Accepted once per browser: the cookie holds the accepted version, which the server reads
  // when a battle or chat begins and stores with it. New terms have a new version and are
  // asked again. Until then no conversation takes input.

  const TERMS_COOKIE = 'arena_terms';
  const conversations = [battle, sbs, direct];
  const termsBox = $('terms');
  const termsText = $('terms-text');
  const termsError = $('terms-error');
  const termsAccept = $('terms-accept');
  let termsVersion = null;

  function acceptedTerms() {
    for (const part of document.cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === TERMS_COOKIE) return part.slice(eq + 1).trim();
    }
    return null;
  }

  // Plain text, a paragraph per blank-line-separated block: never parsed as HTML.
  function paragraphs(text) {
    return String(text).split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean)
      .map((p) => el('p', null, p));
  }

  // While the notice is up, the rest of the page is inert (no focus, no clicks).
  function showTerms(on) {
    termsBox.hidden = !on;
    for (const node of document.body.children) if (node !== termsBox) node.inert = on;
  }

  function unlock() {
    showTerms(false);
    for (const c of conversations) c.setLocked(false);
  }

  async function checkTerms() {
    let cfg;
    try {
      cfg = await loadConfig();
    } catch (e) {
      termsAccept.disabled = true;
      termsError.replaceChildren(el('div', null, `Could not load the terms of use (${e.message}). Retrying…`));
      termsError.hidden = false;
      showTerms(true);
      setTimeout(checkTerms, 3000);
      return;
    }
    const terms = cfg.terms || {};
    termsVersion = String(terms.version || '');
    termsText.replaceChildren(...paragraphs(terms.text || ''));
    $('about-terms').replaceChildren(...paragraphs(terms.text || ''));
    termsError.hidden = true;
    if (termsVersion && acceptedTerms() === termsVersion) {
      unlock();
      return;
    }
    termsAccept.disabled = false;
    showTerms(true);
    termsAccept.focus();
  }

  termsAccept.addEventListener('click', () => {
    if (!termsVersion) return;
    const secure = location.protocol === 'https:' ? '; Secure' : '';
    document.cookie = `${TERMS_COOKIE}=${termsVersion}; Path=/; Max-Age=31536000; SameSite=Strict${secure}`;
    unlock();
    const tab = TABS.find((t) => !$(`panel-${t}`).hidden);
    const input = tab && $(`${tab}-input`);
    if (input) input.focus();
  });

  // ---- tabs ---------------------------------------------------------------------------

  const TABS = ['battle', 'sbs', 'direct', 'leaderboard', 'about'];
  const opened = new Set();

  function showTab(name) {
    for (const t of TABS) {
      const on = t === name;
      const btn = $(`tab-${t}`);
      btn.classList.toggle('active', on);
      btn.setAttribute('aria-selected', String(on));
      btn.tabIndex = on ? 0 : -1;
      $(`panel-${t}`).hidden = !on;
    }
    const first = !opened.has(name);
    opened.add(name);
    if (name === 'sbs' && first) initModels(sbs);
    if (name === 'direct' && first) initModels(direct);
    if (name === 'leaderboard') Leaderboard.load();
    if (location.hash !== `#${name}`) history.replaceState(null, '', name === 'battle' ? location.pathname : `#${name}`);
  }

  TABS.forEach((t, i) => {
    const btn = $(`tab-${t}`);
    btn.addEventListener('click', () => showTab(t));
    btn.addEventListener('keydown', (e) => {
      const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (!step) return;
      const next = TABS[(i + step + TABS.length) % TABS.length];
      showTab(next);
      $(`tab-${next}`).focus();
    });
  });

  // Retry loading models when a tab opened while the server was down.
  for (const [name, conv] of [['sbs', sbs], ['direct', direct]]) {
    $(`tab-${name}`).addEventListener('click', () => {
      if (!configPromise && opened.has(name) && !conv.errorBox.hidden) initModels(conv);
    });
  }

  const initial = location.hash.slice(1);
  showTab(TABS.includes(initial) ? initial : 'battle');
  checkTerms();
})();
