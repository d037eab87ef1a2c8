// The leaderboard tab: the table of ratings, a plot of the 95% intervals and heat maps of the
// pairwise win fractions and battle counts, from GET /api/leaderboard (docs/ARENA_API.md);
// below them the LLM-as-a-judge evaluations from GET /api/evaluation, each with its chart
// (an <img> of /api/evaluation/chart.svg, drawn by the server) and a table.
// Charts are SVG built with createElementNS; every name and number reaches the page as text.
// Older servers send only model, battles, wins, losses, ties, win_rate: the rating columns and
// the charts then stay hidden.
//
// Loaded after conversation.js (uses window.Arena.$, el, getJson); exposes Arena.Leaderboard.load().
'use strict';
(function () {
  const { $, el, getJson } = window.Arena;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const FEW_MARK = '†';
  const FEW_TEXT = 'fewer battles than needed for a stable rating';
  const TOO_FEW = 'too few votes';

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const rounded = (v) => (isNum(v) ? String(Math.round(v) || 0) : '');
  const pad2 = (n) => String(n).padStart(2, '0');
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Text width in px, for laying out labels (works while the tab is hidden, unlike getBBox).
  let measureCtx;
  function textWidth(text, px) {
    if (measureCtx === undefined) measureCtx = document.createElement('canvas').getContext('2d');
    if (!measureCtx) return text.length * px * 0.6;
    measureCtx.font = `${px}px ${getComputedStyle(document.body).fontFamily || 'sans-serif'}`;
    return measureCtx.measureText(text).width;
  }

  // The name cut with an ellipsis to fit in maxW px.
  function fitText(text, px, maxW) {
    if (textWidth(text, px) <= maxW) return text;
    let n = text.length;
    while (n > 1 && textWidth(`${text.slice(0, n)}…`, px) > maxW) n--;
    return `${text.slice(0, n)}…`;
  }

  // ---- data ---------------------------------------------------------------------------

  function normalize(data) {
    const rows = (Array.isArray(data && data.models) ? data.models : [])
      .filter((r) => r && typeof r === 'object' && r.model != null)
      .map((r) => Object.assign({}, r, { model: String(r.model) }));
    const has = (f) => rows.some(f);
    const cols = {
      bt: has((r) => isNum(r.bt)),
      ci: has((r) => isNum(r.bt) && isNum(r.ci_low) && isNum(r.ci_high)),
      elo: has((r) => isNum(r.elo)),
    };
    if (cols.bt) {
      rows.sort((x, y) => (isNum(y.bt) ? y.bt : -Infinity) - (isNum(x.bt) ? x.bt : -Infinity));
    } else if (has((r) => r.rank != null)) {
      rows.sort((x, y) => (Number(x.rank) || Infinity) - (Number(y.rank) || Infinity));
    }
    if (!has((r) => r.rank != null)) {
      // older servers: rank by win rate; equal win rates share a rank
      rows.sort((x, y) => (Number(y.win_rate) || 0) - (Number(x.win_rate) || 0) || (y.battles || 0) - (x.battles || 0));
      rows.forEach((r, i) => {
        const prev = rows[i - 1];
        r.rank = prev && Number(prev.win_rate) === Number(r.win_rate) ? prev.rank : i + 1;
      });
    }
    // win_rate is a fraction (0..1) per the API; tolerate a server sending percentages.
    const winScale = rows.every((r) => !isNum(r.win_rate) || r.win_rate <= 1) ? 100 : 1;
    const minBattles = isNum(data && data.min_battles) ? data.min_battles : 30;
    const provisionalVotes = isNum(data && data.provisional_votes) ? data.provisional_votes : null;
    return { rows, cols, winScale, minBattles, provisionalVotes, order: rows.map((r) => r.model) };
  }

  // {names, values} for a square matrix, rows and columns put in the table's order; null if malformed.
  function matrixOf(m, order) {
    if (!m || !Array.isArray(m.models) || !Array.isArray(m.values)) return null;
    const names = m.models.map(String);
    const n = names.length;
    if (!n || m.values.length !== n || !m.values.every((row) => Array.isArray(row) && row.length === n)) return null;
    const idx = new Map(names.map((name, i) => [name, i]));
    const perm = order.filter((name) => idx.has(name)).map((name) => idx.get(name));
    names.forEach((_, i) => { if (!perm.includes(i)) perm.push(i); });
    const cell = (v) => (isNum(v) ? v : null);
    return {
      names: perm.map((i) => names[i]),
      values: perm.map((i) => perm.map((j) => cell(m.values[i][j]))),
    };
  }

  // ---- table --------------------------------------------------------------------------

  const COLUMNS = [
    { key: 'rank', label: 'Rank', title: '1 + the number of models whose interval lies entirely above this one' },
    { key: 'model', label: 'Model' },
    { key: 'bt', label: 'Rating', title: 'Bradley-Terry rating on the Elo scale', need: 'bt' },
    { key: 'ci', label: '95% CI', title: 'Bootstrap 95% interval, relative to the rating', need: 'ci' },
    { key: 'elo', label: 'Elo', title: 'Online Elo rating', need: 'elo' },
    { key: 'battles', label: 'Votes', title: 'Counted battles with this model' },
    { key: 'win_rate', label: 'Win rate %', title: 'Ties count as half' },
  ];

  function cellFor(key, r, lb) {
    const td = el('td', `col-${key}`);
    switch (key) {
      case 'rank': td.textContent = r.rank == null ? '' : String(r.rank); break;
      case 'model':
        window.Arena.Catalog.nameInto(td, r.model, r.info);
        if (r.few_battles) {
          const mark = el('span', 'few-mark', FEW_MARK);
          mark.title = FEW_TEXT;
          mark.setAttribute('aria-label', FEW_TEXT);
          td.insertBefore(mark, td.querySelector('.model-sub'));
        }
        if (r.provisional === true) {
          // Until then the arena draws the model more often and its rating is still settling.
          const badge = el('span', 'provisional-badge', 'provisional');
          badge.title = lb.provisionalVotes == null
            ? 'Too few counted votes yet: this rating is still settling'
            : `Fewer than ${lb.provisionalVotes} counted votes: this rating is still settling, and new battles draw this model more often until then`;
          td.insertBefore(badge, td.querySelector('.model-sub'));
        }
        break;
      case 'bt': td.textContent = rounded(r.bt); break;
      case 'ci':
        if (r.few_battles) {
          // Below the minimum an interval, however wide, reads as more than the votes say.
          td.textContent = TOO_FEW;
          td.classList.add('too-few');
          td.title = `Fewer than ${lb.minBattles} votes: no interval yet`;
        } else if (isNum(r.bt) && isNum(r.ci_low) && isNum(r.ci_high)) {
          td.textContent = `+${rounded(r.ci_high - r.bt)} / −${rounded(r.bt - r.ci_low)}`;
          td.title = `95% interval: ${rounded(r.ci_low)} – ${rounded(r.ci_high)}`;
        }
        break;
      case 'elo': td.textContent = rounded(r.elo); break;
      case 'battles': {
        td.textContent = r.battles == null ? '' : String(r.battles);
        const parts = [['wins', 'win', 'wins'], ['ties', 'tie', 'ties'], ['losses', 'loss', 'losses']]
          .filter(([k]) => isNum(r[k])).map(([k, one, many]) => plural(r[k], one, many));
        if (parts.length) td.title = parts.join(' · ');
        break;
      }
      case 'win_rate':
        td.textContent = isNum(r.win_rate) ? (r.win_rate * lb.winScale).toFixed(1) : '';
        break;
    }
    return td;
  }

  // Header cells for columns {key, label, title?}.
  const headCells = (cols) => cols.map((c) => {
    const th = el('th', `col-${c.key}`, c.label);
    th.scope = 'col';
    if (c.title) th.title = c.title;
    return th;
  });

  function renderTable(lb, emptyText) {
    const table = $('leaderboard-table');
    // With no rows we cannot tell what the server knows: show the full set of headers.
    const cols = COLUMNS.filter((c) => !c.need || !lb.rows.length || lb.cols[c.need]);
    table.tHead.rows[0].replaceChildren(...headCells(cols));
    const tbody = table.tBodies[0];
    if (!lb.rows.length) {
      const td = el('td', 'empty');
      td.appendChild(el('div', null, emptyText || 'No counted votes yet — vote in the Arena tab'));
      td.colSpan = cols.length;
      tbody.replaceChildren(el('tr'));
      tbody.rows[0].appendChild(td);
    } else {
      tbody.replaceChildren(...lb.rows.map((r) => {
        const tr = el('tr', r.few_battles ? 'few' : null);
        for (const c of cols) tr.appendChild(cellFor(c.key, r, lb));
        return tr;
      }));
    }
    const foot = $('leaderboard-footnote');
    foot.hidden = !lb.rows.some((r) => r.few_battles);
    foot.textContent = `${FEW_MARK} ${FEW_TEXT}`;
  }

  function renderMeta(data) {
    const parts = [];
    if (isNum(data.votes)) parts.push(plural(data.votes, 'counted vote', 'counted votes'));
    if (typeof data.intervals === 'string' && data.intervals) {
      parts.push(data.intervals);
    } else if (isNum(data.bootstrap_rounds)) {
      parts.push(`95% intervals from ${plural(data.bootstrap_rounds, 'bootstrap round', 'bootstrap rounds')}`);
    }
    if (isNum(data.computed_ms)) {
      const d = new Date(data.computed_ms);
      parts.push(`updated ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`);
      $('leaderboard-meta').title = d.toString();
    }
    $('leaderboard-meta').textContent = parts.join(' · ');
    $('leaderboard-meta').hidden = !parts.length;
    if (window.Arena.Exclusions) window.Arena.Exclusions.render(data);
    renderStyleNote(data);
    renderCategories(data);
    renderSnapshot(data.snapshot);
  }

  // The latest daily snapshot: its day, votes and vote-set hash, and the file to verify.
  function renderSnapshot(s) {
    const line = $('leaderboard-snapshot');
    const ok = s && typeof s.day === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(s.day)
      && typeof s.vote_set_sha256 === 'string';
    if (!ok) { line.hidden = true; return; }
    const link = el('a', null, 'JSON');
    link.href = `/api/leaderboard/snapshots/${s.day}`;
    link.title = 'Check it with: arena leaderboard --verify FILE';
    line.replaceChildren(
      `Daily snapshot ${s.day}: ${plural(isNum(s.votes) ? s.votes : 0, 'vote', 'votes')}, vote set sha256 `,
      el('code', null, s.vote_set_sha256.slice(0, 16) + '…'),
      ' (', link, ')');
    line.title = s.vote_set_sha256;
    line.hidden = false;
  }

  // The category menu (every category with counted votes) and what a category board leaves out.
  const CATEGORY_LABELS = {
    coding: 'Coding', math: 'Math', multi_turn: 'Multi-turn', long_query: 'Longer query',
    non_english: 'Non-English', hard_prompt: 'Hard prompts',
  };
  const categoryLabel = (name) =>
    CATEGORY_LABELS[name] || name.charAt(0).toUpperCase() + name.slice(1).replace(/_/g, ' ');
  function renderCategories(data) {
    const select = $('leaderboard-category');
    const current = select.value;
    const list = Array.isArray(data.categories) ? data.categories : [];
    const options = [el('option', null, 'All battles')];
    options[0].value = '';
    for (const c of list) {
      if (!c || typeof c.name !== 'string') continue;
      const o = el('option', null, `${categoryLabel(c.name)} (${isNum(c.votes) ? c.votes : 0})`);
      o.value = c.name;
      options.push(o);
    }
    select.replaceChildren(...options);
    select.value = options.some((o) => o.value === current) ? current : '';
    const note = $('leaderboard-category-note');
    if (typeof data.category !== 'string') { note.hidden = true; return; }
    let text = `${categoryLabel(data.category)}: ${plural(isNum(data.votes) ? data.votes : 0, 'counted vote', 'counted votes')}.`;
    if (isNum(data.category_min_battles)) {
      text += ` Only models with at least ${plural(data.category_min_battles, 'battle', 'battles')} in this category are listed`;
      text += isNum(data.hidden_models) && data.hidden_models > 0
        ? ` (${plural(data.hidden_models, 'model', 'models')} with fewer not shown).` : '.';
    }
    note.textContent = text;
    note.hidden = false;
  }

  // What style control adjusted for: each feature's coefficient (log-odds of winning per
  // standard deviation of the A-minus-B difference), and the votes it could not use.
  const STYLE_LABELS = {
    sum_assistant_tokens: 'length', header_count: 'headers', list_count: 'lists', bold_count: 'bold',
  };
  function renderStyleNote(data) {
    const note = $('leaderboard-style-note');
    const coefs = Array.isArray(data.style_coefficients) ? data.style_coefficients : [];
    if (!data.style_control) { note.hidden = true; return; }
    const parts = coefs
      .filter((c) => c && isNum(c.coefficient))
      .map((c) => `${STYLE_LABELS[c.feature] || String(c.feature)} ${c.coefficient >= 0 ? '+' : '−'}${Math.abs(c.coefficient).toFixed(3)}`);
    let text = parts.length
      ? `Style control: ratings as if both answers had the same length and markdown. Style effects on the log-odds of winning: ${parts.join(', ')}.`
      : 'Style control: no style effects estimated yet.';
    if (isNum(data.without_style) && data.without_style > 0) {
      text += ` ${plural(data.without_style, 'counted vote', 'counted votes')} without recorded style left out.`;
    }
    note.textContent = text;
    note.hidden = false;
  }

  // ---- interval plot ------------------------------------------------------------------

  // The axis domain (the data's range, padded a little) and round tick values inside it.
  function axisOf(lo, hi, count) {
    if (!(hi > lo)) { lo -= 10; hi += 10; }
    const padding = (hi - lo) * 0.04;
    lo -= padding;
    hi += padding;
    const raw = (hi - lo) / Math.max(1, count);
    const mag = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / mag;
    const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi && ticks.length < 50; t += step) ticks.push(t);
    return { lo, hi, ticks };
  }

  // One row per model, best first: a point at the rating and a bar over its 95% interval.
  // Narrow screens put each name on its own line above its bar.
  function renderCiPlot(plot, rows, width) {
    const shown = (r) => window.Arena.Catalog.displayName(r.model, r.info);
    const pts = rows.filter((r) => isNum(r.bt));
    const hasCi = (r) => isNum(r.ci_low) && isNum(r.ci_high);
    const FONT = 12, TOP = 8, AXIS = 48;
    const stacked = width < 480;
    const ROW = stacked ? 38 : 26;
    const labelW = stacked ? 0 : Math.min(Math.max(...pts.map((r) => textWidth(shown(r), FONT))) + 24, width * 0.4, 260);
    const x0 = stacked ? 14 : labelW + 14, x1 = width - 18;
    const { lo, hi, ticks } = axisOf(Math.min(...pts.map((r) => (hasCi(r) ? Math.min(r.ci_low, r.bt) : r.bt))),
      Math.max(...pts.map((r) => (hasCi(r) ? Math.max(r.ci_high, r.bt) : r.bt))), Math.max(2, Math.floor((x1 - x0) / 70)));
    const xOf = (v) => x0 + ((v - lo) / (hi - lo)) * (x1 - x0);
    const bottom = TOP + pts.length * ROW;
    const height = bottom + AXIS;

    plot.setAttribute('width', width);
    plot.setAttribute('height', height);
    plot.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const kids = [svg('title', {}, 'Ratings with 95% confidence intervals')];
    pts.forEach((r, i) => {
      if (i % 2 === 0) kids.push(svg('rect', { class: 'stripe', x: 0, y: TOP + i * ROW, width, height: ROW }));
    });
    const axis = svg('g', { class: 'axis' });
    for (const t of ticks) {
      const x = xOf(t);
      axis.append(svg('line', { class: 'grid', x1: x, x2: x, y1: TOP, y2: bottom }),
        svg('line', { class: 'tick', x1: x, x2: x, y1: bottom, y2: bottom + 5 }),
        svg('text', { x, y: bottom + 18, 'text-anchor': 'middle' }, String(Math.round(t))));
    }
    axis.append(svg('line', { class: 'domain', x1: x0, x2: x1, y1: bottom, y2: bottom }),
      svg('text', { class: 'axis-title', x: (x0 + x1) / 2, y: bottom + 38, 'text-anchor': 'middle' },
        stacked ? 'Rating with 95% interval' : 'Rating (Bradley-Terry, Elo scale) with 95% interval'));
    kids.push(axis);
    pts.forEach((r, i) => {
      const top = TOP + i * ROW;
      const cy = stacked ? top + 27 : top + ROW / 2;
      const g = svg('g', { class: r.few_battles ? 'ci-row few' : 'ci-row' });
      const ci = hasCi(r) ? `, 95% interval ${rounded(r.ci_low)} – ${rounded(r.ci_high)}` : '';
      const served = shown(r) === String(r.model) ? '' : ` (${r.model})`;
      g.appendChild(svg('title', {}, `${shown(r)}${served}: rating ${rounded(r.bt)}${ci}` +
        `${isNum(r.battles) ? `, ${plural(r.battles, 'battle', 'battles')}` : ''}${r.few_battles ? ` (${FEW_TEXT})` : ''}`));
      g.appendChild(svg('rect', { class: 'hit', x: 0, y: top, width, height: ROW }));
      const mark = r.few_battles ? ` ${FEW_MARK}` : '';
      const name = fitText(shown(r), FONT, (stacked ? width - 80 : labelW - 14) - (mark ? 10 : 0)) + mark;
      g.appendChild(stacked
        ? svg('text', { class: 'label', x: 6, y: top + 13 }, `${name}  ${rounded(r.bt)}`)
        : svg('text', { class: 'label', x: labelW, y: cy + 4, 'text-anchor': 'end' }, name));
      if (ci) {
        const a = xOf(r.ci_low), b = xOf(r.ci_high);
        g.append(svg('line', { class: 'ci-bar', x1: a, x2: b, y1: cy, y2: cy }),
          svg('line', { class: 'ci-bar', x1: a, x2: a, y1: cy - 5, y2: cy + 5 }),
          svg('line', { class: 'ci-bar', x1: b, x2: b, y1: cy - 5, y2: cy + 5 }));
      }
      g.appendChild(svg('circle', { class: 'ci-point', cx: xOf(r.bt), cy, r: 4.5 }));
      kids.push(g);
    });
    plot.replaceChildren(...kids);
  }

  // ---- heat maps ----------------------------------------------------------------------

  const BLUE = [33, 102, 172], WHITE = [247, 247, 247], RED = [178, 24, 43];
  const mix = (a, b, t) => a.map((v, i) => Math.round(v + (b[i] - v) * t));
  const lightBg = (c) => (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255 > 0.55;
  // Around 0.5: blue when the row model mostly lost, red when it mostly won.
  const diverging = (v) => {
    const t = Math.max(-1, Math.min(1, (v - 0.5) * 2));
    return t >= 0 ? mix(WHITE, RED, t) : mix(WHITE, BLUE, -t);
  };

  // opts: avail (px), color(v, max) -> [r,g,b], format(v), tip(rowName, colName, v, i, j),
  // label(name) -> the text shown for a model, skipDiagonal, legend: [left, right]
  function renderHeatmap(map, m, opts) {
    const n = m.names.length;
    const compact = opts.avail < 520;
    const FONT = 12, CELL = compact || n > 12 ? 36 : 44;
    const labelOf = opts.label || String;
    const labelW = Math.min(Math.max(...m.names.map((s) => textWidth(labelOf(s), FONT))) + 4, compact ? 110 : 150);
    const slant = labelW * Math.SQRT1_2;
    const left = labelW + 10, top = slant + 16;
    const right = Math.max(10, slant - CELL / 2 + 10);
    // The legend's two end labels sit under the ends of its bar when they fit side by side;
    // on a narrow bar (two or three models) the second goes on a line of its own, or the
    // labels would be drawn over each other.
    const LEGEND_FONT = 11, barW = Math.min(n * CELL, 240);
    const legendW = opts.legend ? opts.legend.map((t) => textWidth(t, LEGEND_FONT)) : [0, 0];
    const stacked = opts.legend && legendW[0] + legendW[1] + 12 > barW;
    const legendH = opts.legend ? (stacked ? 56 : 40) : 0;
    const width = Math.ceil(Math.max(left + n * CELL + right, left + Math.max(barW, ...legendW) + 10));
    const height = Math.ceil(top + n * CELL + 8 + legendH);
    map.setAttribute('width', width);
    map.setAttribute('height', height);
    map.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const max = Math.max(1, ...m.values.flat().filter(isNum));
    const kids = [svg('title', {}, opts.title)];
    m.names.forEach((name, i) => {
      const label = fitText(labelOf(name), FONT, labelW);
      const cy = top + i * CELL + CELL / 2, cx = left + i * CELL + CELL / 2;
      kids.push(svg('text', { class: 'label', x: left - 6, y: cy + 4, 'text-anchor': 'end' }, label));
      kids.push(svg('text', { class: 'label', x: cx, y: top - 6, transform: `rotate(-45 ${cx} ${top - 6})` }, label));
    });
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let v = m.values[i][j];
        if (opts.skipDiagonal && i === j) v = null;
        const x = left + j * CELL, y = top + i * CELL;
        const g = svg('g', { class: 'hm-cell' });
        if (v === null) {
          g.appendChild(svg('rect', { class: 'hm-null', x, y, width: CELL - 1, height: CELL - 1 }));
        } else {
          const c = opts.color(v, max);
          g.append(svg('title', {}, opts.tip(m.names[i], m.names[j], v, i, j)),
            svg('rect', { x, y, width: CELL - 1, height: CELL - 1, fill: `rgb(${c.join(',')})` }),
            svg('text', { class: lightBg(c) ? 'hm-value on-light' : 'hm-value on-dark',
              x: x + CELL / 2, y: y + CELL / 2 + 4, 'text-anchor': 'middle' }, opts.format(v)));
        }
        kids.push(g);
      }
    }
    if (opts.legend) {
      const id = `${map.id}-legend`;
      const grad = svg('linearGradient', { id });
      for (const t of [0, 0.25, 0.5, 0.75, 1]) {
        grad.appendChild(svg('stop', { offset: t, 'stop-color': `rgb(${opts.color(t * max, max).join(',')})` }));
      }
      const y = top + n * CELL + 12, w = barW;
      const defs = svg('defs');
      defs.appendChild(grad);
      const second = stacked
        ? svg('text', { class: 'legend', x: left, y: y + 38 }, opts.legend[1])
        : svg('text', { class: 'legend', x: left + w, y: y + 22, 'text-anchor': 'end' }, opts.legend[1]);
      kids.push(defs, svg('rect', { class: 'legend-bar', x: left, y, width: w, height: 8, fill: `url(#${id})` }),
        svg('text', { class: 'legend', x: left, y: y + 22 }, opts.legend[0]), second);
    }
    map.replaceChildren(...kids);
  }

  function renderCharts(data, lb) {
    const ciFig = $('leaderboard-ci-figure');
    ciFig.hidden = !lb.rows.some((r) => isNum(r.bt));
    if (!ciFig.hidden) {
      const avail = ciFig.querySelector('.chart-scroll').clientWidth || 720;
      renderCiPlot($('leaderboard-ci-plot'), lb.rows, Math.max(280, avail));
    }
    const counts = lb.rows.length ? matrixOf(data.battle_counts, lb.order) : null;
    const countOf = (a, b) => {
      if (!counts) return null;
      const i = counts.names.indexOf(a), j = counts.names.indexOf(b);
      return i >= 0 && j >= 0 ? counts.values[i][j] : null;
    };
    // Heat maps index by served name and show the catalog's display name.
    const infoOf = new Map(lb.rows.map((r) => [r.model, r.info]));
    const label = (m) => window.Arena.Catalog.displayName(m, infoOf.get(m));
    const wins = lb.rows.length ? matrixOf(data.win_fraction, lb.order) : null;
    $('leaderboard-heatmap-figure').hidden = !wins;
    if (wins) {
      renderHeatmap($('leaderboard-heatmap'), wins, {
        avail: $('leaderboard-heatmap-figure').querySelector('.chart-scroll').clientWidth || 720,
        title: 'Fraction of A wins in A vs B battles (ties excluded)',
        color: diverging,
        format: (v) => v.toFixed(2),
        label,
        tip: (a, b, v) => {
          const c = countOf(a, b);
          return `${label(a)} beat ${label(b)} in ${(v * 100).toFixed(0)}% of their decisive battles` +
            (isNum(c) ? ` (${plural(c, 'battle', 'battles')} in all, ties included)` : '');
        },
        legend: ['0: B always wins', '1: A always wins'],
      });
    }
    $('leaderboard-counts-figure').hidden = !counts;
    if (counts) {
      renderHeatmap($('leaderboard-counts'), counts, {
        avail: $('leaderboard-counts-figure').querySelector('.chart-scroll').clientWidth || 720,
        title: 'Counted battles for each pair of models',
        color: (v, max) => mix(WHITE, BLUE, Math.sqrt(v / max)),
        format: (v) => String(Math.round(v)),
        label,
        tip: (a, b, v) => `${label(a)} vs ${label(b)}: ${plural(v, 'counted battle', 'counted battles')}`,
        skipDiagonal: true,
      });
    }
  }

  // ---- evaluation (LLM as a judge, GET /api/evaluation) ---------------------------------

  const MODES = { single: 'single grades (1–10)', pairwise: 'pairwise', 'arena-hard': 'Arena-Hard' };
  const fixed = (v, digits) => (isNum(v) ? v.toFixed(digits) : '');
  const pct = (v, digits) => (isNum(v) ? (v * 100).toFixed(digits) : '');

  // Columns {key, label, title?, cell(model) -> text}, by mode.
  function evalColumns(s) {
    const model = { key: 'model', label: 'Model', cell: (m) => m.model };
    if (s.mode === 'single') {
      const turns = Math.max(0, ...s.models.map((m) => (m.single && Array.isArray(m.single.turns) ? m.single.turns.length : 0)));
      const sc = (m) => m.single || {};
      return [model,
        { key: 'score', label: 'Score', title: 'Mean grade, 1–10', cell: (m) => (sc(m).graded ? fixed(sc(m).overall, 2) : '') },
        ...Array.from({ length: turns }, (_, t) => (
          { key: 'turn', label: `Turn ${t + 1}`, title: `Mean grade on turn ${t + 1}`, cell: (m) => fixed((sc(m).turns || [])[t], 2) })),
        { key: 'relative', label: 'Relative %', title: s.baseline ? `Total score as a percentage of ${s.baseline}'s` : '',
          cell: (m) => fixed(sc(m).relative, 1) }];
    }
    const pr = (m) => m.pairs || {};
    return [model,
      { key: 'win_rate', label: 'Win rate %', title: 'Ties count as half; bootstrap 95% interval over questions',
        cell: (m) => (isNum(pr(m).win_rate) && (pr(m).wins + pr(m).ties + pr(m).losses) > 0 ? `${pct(pr(m).win_rate, 1)} (${pct(pr(m).ci_low, 1)} – ${pct(pr(m).ci_high, 1)})` : '') },
      { key: 'wtl', label: 'W / T / L', title: 'Wins, ties (including pairs whose two orders disagreed) and losses',
        cell: (m) => [pr(m).wins, pr(m).ties, pr(m).losses].map((v) => (isNum(v) ? String(v) : '?')).join(' / ') },
      { key: 'consistency', label: 'Consistency %', title: 'Pairs where the judge said the same in both orders',
        cell: (m) => pct(pr(m).consistency, 0) }];
  }

  function chartUrl(s) {
    const q = [['set', s.question_set], ['judge', s.judge], ['mode', s.mode]]
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
    return `/api/evaluation/chart.svg?${q}`;
  }

  function renderEvaluation(s) {
    const box = el('article', 'eval-run');
    box.appendChild(el('h3', null, `${s.question_set} · judged by ${s.judge} · ${MODES[s.mode] || s.mode}`));
    const single = s.mode === 'single';
    const about = single
      ? (s.baseline ? `Each model's total score as a percentage of ${s.baseline}'s` : 'Relative scores')
      : `Win rate ${s.baseline ? `against ${s.baseline}` : 'over all pairs'}, with its 95% interval`;
    // The chart carries its own title; the figure is its frame.
    const fig = el('figure', 'chart eval-chart');
    const img = el('img');
    img.alt = `Bar chart. ${about} (${s.question_set}, judge ${s.judge}); the table below gives the numbers.`;
    img.addEventListener('error', () => { fig.hidden = true; }); // nothing to draw: 404
    img.src = chartUrl(s);
    fig.appendChild(el('div', 'chart-scroll')).appendChild(img);
    const cols = evalColumns(s);
    const table = el('table', 'lb-table eval-table');
    table.createTHead().insertRow().replaceChildren(...headCells(cols));
    const body = table.createTBody();
    for (const m of s.models) {
      const tr = body.insertRow();
      for (const c of cols) tr.appendChild(el('td', `col-${c.key}`, c.cell(m)));
    }
    const wrap = el('div', 'table-wrap');
    wrap.appendChild(table);
    const note = el('p', 'lb-note', `${plural(Number(s.judgments) || 0, 'judgment', 'judgments')}, ` +
      `${plural(Number(s.unreadable) || 0, 'unreadable verdict', 'unreadable verdicts')} (counted, never guessed)`);
    box.append(fig, wrap, note);
    return box;
  }

  let evalSeq = 0;
  async function loadEvaluations() {
    const mine = ++evalSeq;
    const errBox = $('evaluation-error');
    try {
      const data = await getJson('/api/evaluation');
      if (mine !== evalSeq) return;
      errBox.hidden = true;
      const list = (Array.isArray(data && data.evaluations) ? data.evaluations : [])
        .filter((s) => s && typeof s === 'object' && Array.isArray(s.models))
        .map((s) => Object.assign({}, s, {
          question_set: String(s.question_set), judge: String(s.judge), mode: String(s.mode),
          models: s.models.filter((m) => m && m.model != null).map((m) => Object.assign({}, m, { model: String(m.model) })),
        }));
      $('evaluation-empty').hidden = list.length > 0;
      $('evaluation-list').replaceChildren(...list.map(renderEvaluation));
    } catch (e) {
      if (mine !== evalSeq) return;
      errBox.textContent = `Could not load the evaluations: ${e.message}`;
      errBox.hidden = false;
    }
  }

  // ---- loading ------------------------------------------------------------------------

  let seq = 0;
  let last = null; // {data, lb, width} of the latest render, for re-laying out on resize

  function render(data) {
    const lb = normalize(data);
    renderTable(lb, typeof data.category === 'string'
      ? 'No model has enough battles in this category yet' : null);
    renderMeta(data);
    renderCharts(data, lb);
    last = { data, lb, width: $('leaderboard-ci-figure').querySelector('.chart-scroll').clientWidth };
  }

  async function load() {
    loadEvaluations();
    const mine = ++seq;
    const errBox = $('leaderboard-error');
    const tbody = $('leaderboard-table').tBodies[0];
    if (!tbody.rows.length) {
      const tr = el('tr', 'loading');
      tr.appendChild(el('td', 'empty', 'Loading…'));
      tbody.replaceChildren(tr);
    }
    try {
      const params = new URLSearchParams();
      if ($('leaderboard-style').checked) params.set('style_control', 'true');
      if ($('leaderboard-category').value) params.set('category', $('leaderboard-category').value);
      const url = params.toString() ? `/api/leaderboard?${params}` : '/api/leaderboard';
      const data = await getJson(url);
      if (mine !== seq) return;
      errBox.hidden = true;
      render(data && typeof data === 'object' ? data : {});
    } catch (e) {
      if (mine !== seq) return;
      errBox.textContent = `Could not load the leaderboard: ${e.message}`;
      errBox.hidden = false;
      if (tbody.rows.length === 1 && tbody.rows[0].classList.contains('loading')) tbody.replaceChildren();
    }
  }

  $('leaderboard-refresh').addEventListener('click', load);
  $('leaderboard-style').addEventListener('change', load);
  $('leaderboard-category').addEventListener('change', load);

  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (!last || $('panel-leaderboard').hidden) return;
      const w = $('leaderboard-ci-figure').querySelector('.chart-scroll').clientWidth;
      if (w && w !== last.width) render(last.data);
    }, 150);
  });

  window.Arena.Leaderboard = { load };
})();
