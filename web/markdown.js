// A small, safe markdown renderer for model output.
//
// Safety: every piece of text reaches the page through document.createTextNode /
// textContent, and element names come from fixed strings in this file. Nothing here
// parses an HTML string or runs generated code. Links are
// made only for absolute http(s) URLs. So `<img src=x onerror=alert(1)>` in a reply
// shows up as those characters, literally.
//
// Exposes window.Markdown.render(text) -> DocumentFragment.
'use strict';
(function () {
  const MAX_DEPTH = 12; // nesting of lists / quotes before we fall back to plain text

  const FENCE_RE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/;
  const HEADING_RE = /^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/;
  const HR_RE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
  const QUOTE_RE = /^ {0,3}> ?/;
  const LIST_RE = /^([ \t]*)([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;
  const TABLE_SEP_RE = /^ *\|? *:?-{1,}:? *(?:\| *:?-{1,}:? *)*\|? *$/;

  function el(tag, cls) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    return e;
  }

  function indentOf(line) {
    const m = /^[ \t]*/.exec(line);
    return m[0].replace(/\t/g, '    ').length;
  }

  function isBlank(line) {
    return line.trim() === '';
  }

  // A line that interrupts a paragraph.
  function startsBlock(line) {
    return FENCE_RE.test(line) || HEADING_RE.test(line) || HR_RE.test(line) ||
      QUOTE_RE.test(line) || LIST_RE.test(line);
  }

  function safeUrl(raw) {
    try {
      const url = new URL(raw);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function link(href, parent) {
    const a = el('a');
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    parent.appendChild(a);
    return a;
  }

  // ---- inline -------------------------------------------------------------------------
  // Groups: 1 escaped char | 2,3 code span | 4 **strong** | 5 __strong__ | 6 ~~del~~ |
  //         7 *em* | 8 _em_ | 9,10 [text](url) | 11 bare URL
  const INLINE_RE = new RegExp([
    /\\([\\`*_{}\[\]()#+\-.!>~|<])/.source,
    /(`+)([^`]|[^`][\s\S]*?[^`])\2(?!`)/.source,
    /\*\*(?=\S)([\s\S]*?\S)\*\*/.source,
    /(?<![\w])__(?=\S)([\s\S]*?\S)__(?![\w])/.source,
    /~~(?=\S)([\s\S]*?\S)~~/.source,
    /\*(?=[^\s*])((?:[^*]|\*\*[^*]+\*\*)*?[^\s*])\*(?!\*)/.source,
    /(?<![\w])_(?=[^\s_])([\s\S]*?[^\s_])_(?![\w])/.source,
    /\[([^\]\n]+)\]\(\s*<?([^\s()<>]+)>?(?:\s+"[^"\n]*")?\s*\)/.source,
    /(https?:\/\/[^\s<>()\[\]]*[^\s<>()\[\].,;:!?'"*_~])/.source,
  ].join('|'), 'g');

  function renderInline(text, parent, depth, noLinks) {
    if (depth > MAX_DEPTH) {
      parent.appendChild(document.createTextNode(text));
      return;
    }
    const re = new RegExp(INLINE_RE.source, 'g');
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) appendText(text.slice(last, m.index), parent);
      last = re.lastIndex;
      if (m[1] !== undefined) {
        appendText(m[1], parent);
      } else if (m[2] !== undefined) {
        let code = m[3].replace(/\n/g, ' ');
        if (/^ .*[^ ].* $/.test(code)) code = code.slice(1, -1);
        const c = el('code');
        c.textContent = code;
        parent.appendChild(c);
      } else if (m[4] !== undefined || m[5] !== undefined) {
        renderInline(m[4] !== undefined ? m[4] : m[5], parent.appendChild(el('strong')), depth + 1, noLinks);
      } else if (m[6] !== undefined) {
        renderInline(m[6], parent.appendChild(el('del')), depth + 1, noLinks);
      } else if (m[7] !== undefined || m[8] !== undefined) {
        renderInline(m[7] !== undefined ? m[7] : m[8], parent.appendChild(el('em')), depth + 1, noLinks);
      } else if (m[9] !== undefined) {
        const href = noLinks ? null : safeUrl(m[10]);
        if (href) {
          renderInline(m[9], link(href, parent), depth + 1, true);
        } else {
          appendText(m[0], parent); // not a safe link: show it as written
        }
      } else if (m[11] !== undefined) {
        const href = noLinks ? null : safeUrl(m[11]);
        if (href) link(href, parent).textContent = m[11];
        else appendText(m[11], parent);
      }
    }
    if (last < text.length) appendText(text.slice(last), parent);
  }

  // Text with hard line breaks kept as <br>.
  function appendText(text, parent) {
    const parts = text.split('\n');
    parts.forEach((part, i) => {
      if (i > 0) parent.appendChild(el('br'));
      if (part) parent.appendChild(document.createTextNode(part));
    });
  }

  // ---- blocks -------------------------------------------------------------------------

  function renderBlocks(lines, out, depth) {
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (isBlank(line)) {
        i++;
      } else if ((m = FENCE_RE.exec(line))) {
        i = codeBlock(lines, i, m, out);
      } else if ((m = HEADING_RE.exec(line))) {
        const h = el('h' + m[1].length); // h1..h6, from the regex
        renderInline(m[2], h, depth);
        out.appendChild(h);
        i++;
      } else if (HR_RE.test(line)) {
        out.appendChild(el('hr'));
        i++;
      } else if (QUOTE_RE.test(line) && depth < MAX_DEPTH) {
        const inner = [];
        while (i < lines.length && !isBlank(lines[i]) && (QUOTE_RE.test(lines[i]) || !startsBlock(lines[i]))) {
          inner.push(lines[i].replace(QUOTE_RE, ''));
          i++;
        }
        const q = el('blockquote');
        renderBlocks(inner, q, depth + 1);
        out.appendChild(q);
      } else if (LIST_RE.test(line) && depth < MAX_DEPTH) {
        i = list(lines, i, out, depth);
      } else if (line.includes('|') && i + 1 < lines.length && TABLE_SEP_RE.test(lines[i + 1]) &&
                 lines[i + 1].includes('-')) {
        i = table(lines, i, out, depth);
      } else {
        const para = [line.trim()];
        i++;
        while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines[i])) {
          para.push(lines[i].trim());
          i++;
        }
        const p = el('p');
        renderInline(para.join('\n'), p, depth);
        out.appendChild(p);
      }
    }
  }

  function codeBlock(lines, i, m, out) {
    const fence = m[1];
    const lang = m[2] || '';
    const body = [];
    i++;
    const closeRe = new RegExp('^ {0,3}' + (fence[0] === '`' ? '`' : '~') + '{' + fence.length + ',}\\s*$');
    while (i < lines.length && !closeRe.test(lines[i])) {
      body.push(lines[i]);
      i++;
    }
    const open = i >= lines.length; // still streaming, or never closed
    if (!open) i++;
    const wrap = el('div', 'codeblock');
    const head = el('div', 'code-lang');
    head.textContent = lang || 'code';
    wrap.appendChild(head);
    const pre = el('pre');
    const code = el('code');
    code.textContent = body.join('\n');
    if (lang) code.dataset.lang = lang;
    pre.appendChild(code);
    wrap.appendChild(pre);
    out.appendChild(wrap);
    return i;
  }

  function list(lines, i, out, depth) {
    const first = LIST_RE.exec(lines[i]);
    const ordered = /\d/.test(first[2]);
    const base = indentOf(lines[i]);
    const listEl = el(ordered ? 'ol' : 'ul');
    if (ordered) {
      const n = parseInt(first[2], 10);
      if (n !== 1) listEl.start = n;
    }
    while (i < lines.length) {
      const m = LIST_RE.exec(lines[i]);
      if (!m || /\d/.test(m[2]) !== ordered || indentOf(lines[i]) > base + 1) break;
      const item = [m[3]];
      const contentIndent = indentOf(lines[i]) + m[2].length + 1;
      i++;
      while (i < lines.length) {
        const l = lines[i];
        if (isBlank(l)) {
          let j = i;
          while (j < lines.length && isBlank(lines[j])) j++;
          if (j < lines.length && indentOf(lines[j]) > base + 1) {
            for (; i < j; i++) item.push('');
            continue;
          }
          break;
        }
        const ind = indentOf(l);
        if (ind > base + 1) {
          item.push(l.replace(/\t/g, '    ').slice(Math.min(ind, contentIndent)));
        } else if (startsBlock(l)) {
          break;
        } else {
          item.push(l.trim()); // lazy continuation of the item's paragraph
        }
        i++;
      }
      const li = el('li');
      renderBlocks(item, li, depth + 1);
      listEl.appendChild(li);
      // blank lines between items: keep the list going if another item follows
      let j = i;
      while (j < lines.length && isBlank(lines[j])) j++;
      const next = j < lines.length ? LIST_RE.exec(lines[j]) : null;
      if (next && /\d/.test(next[2]) === ordered && indentOf(lines[j]) <= base + 1) i = j;
      else break;
    }
    out.appendChild(listEl);
    return i;
  }

  function splitRow(line) {
    let s = line.trim();
    if (s.startsWith('|')) s = s.slice(1);
    if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
    return s.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
  }

  function table(lines, i, out, depth) {
    const head = splitRow(lines[i]);
    const aligns = splitRow(lines[i + 1]).map((c) =>
      c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : '');
    i += 2;
    const wrap = el('div', 'table-wrap');
    const t = el('table');
    const thead = el('thead');
    const tr = el('tr');
    head.forEach((cell, k) => {
      const th = el('th');
      if (aligns[k]) th.style.textAlign = aligns[k];
      renderInline(cell, th, depth);
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    t.appendChild(thead);
    const tbody = el('tbody');
    while (i < lines.length && !isBlank(lines[i]) && lines[i].includes('|')) {
      const row = el('tr');
      const cells = splitRow(lines[i]);
      for (let k = 0; k < head.length; k++) {
        const td = el('td');
        if (aligns[k]) td.style.textAlign = aligns[k];
        renderInline(cells[k] || '', td, depth);
        row.appendChild(td);
      }
      tbody.appendChild(row);
      i++;
    }
    t.appendChild(tbody);
    wrap.appendChild(t);
    out.appendChild(wrap);
    return i;
  }

  function render(text) {
    const frag = document.createDocumentFragment();
    const lines = String(text == null ? '' : text).replace(/\r\n?/g, '\n').split('\n');
    renderBlocks(lines, frag, 0);
    return frag;
  }

  window.Markdown = { render: render, safeUrl: safeUrl };
})();
