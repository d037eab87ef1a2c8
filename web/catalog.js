// What the model catalog (the controller's --model-info file) says about a model, on the page:
// its display name linked to its page, organization and licence, the description as a tooltip.
// The `info` objects come from GET /api/leaderboard rows and the vote's info_a / info_b
// (docs/ARENA_API.md). Their text is the operator's, shown on a public page: it reaches the
// page only through textContent and attributes, and a link only when it is http(s).
//
// Loaded after conversation.js (uses window.Arena.el), before leaderboard.js and app.js;
// exposes Arena.Catalog: displayName, nameInto, reveal.
'use strict';
(function () {
  const { el } = window.Arena;

  const text = (v) => (typeof v === 'string' && v.trim() ? v.trim() : '');

  // The link when it is an absolute http(s) URL, else '' (the server checks too).
  function safeHref(v) {
    const s = text(v);
    if (!/^https?:\/\//i.test(s)) return '';
    try {
      const u = new URL(s);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : '';
    } catch (_) {
      return '';
    }
  }

  // The catalog's display name of a model, its served name when there is none.
  function displayName(model, info) {
    return text(info && info.display_name) || String(model);
  }

  // The display name (served name when there is none) as a link when the info has one.
  function nameNode(model, info, cls) {
    const shown = displayName(model, info);
    const href = safeHref(info && info.link);
    const node = el(href ? 'a' : 'span', cls, shown);
    if (href) {
      node.href = href;
      node.target = '_blank';
      node.rel = 'noopener noreferrer';
    }
    const description = text(info && info.description);
    if (description) node.title = description;
    return node;
  }

  // "Organization · Licence", or '' when the info has neither.
  function subtitle(info) {
    return [text(info && info.organization), text(info && info.license)].filter(Boolean).join(' · ');
  }

  // Fills a leaderboard cell: the display name (linked), then organization and licence on a
  // second line. A model the catalog lacks keeps its served name as plain text.
  function nameInto(td, model, info) {
    if (!info || typeof info !== 'object') {
      td.textContent = model;
      return;
    }
    td.replaceChildren(nameNode(model, info, 'model-link'));
    td.title = model;
    const sub = subtitle(info);
    if (sub) td.appendChild(el('span', 'model-sub', sub));
  }

  // After a vote: "Model A: " and the model, as its display name (linked) with the served
  // name beside it when they differ, organization and licence.
  function reveal(target, label, model, info) {
    target.replaceChildren(document.createTextNode(`${label}: `));
    if (!info || typeof info !== 'object') {
      target.appendChild(document.createTextNode(String(model)));
      return;
    }
    target.appendChild(nameNode(String(model), info, 'model-link'));
    if (text(info.display_name) && text(info.display_name) !== String(model)) {
      target.appendChild(el('span', 'model-served', ` (${model})`));
    }
    const sub = subtitle(info);
    if (sub) target.appendChild(el('span', 'model-sub', sub));
  }

  window.Arena = Object.assign(window.Arena || {}, { Catalog: { displayName, nameInto, reveal } });
})();
