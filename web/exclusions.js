// The votes the arena kept off the leaderboard, per rule, under the leaderboard table:
// "Not counted: 3 votes (too fast 2, identity leak 1)", from the `excluded` field of
// GET /api/leaderboard (docs/ARENA_API.md). Text only (textContent); an older server without
// the field leaves the line hidden.
//
// Loaded after conversation.js (uses window.Arena.$), before leaderboard.js;
// exposes Arena.Exclusions.render(data).
'use strict';
(function () {
  const { $ } = window.Arena;

  const count = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.round(v) : 0);

  // The line for `excluded` ([{rule, label, votes}]), or '' when no vote was left out.
  function summary(excluded) {
    const rows = (Array.isArray(excluded) ? excluded : [])
      .filter((r) => r && typeof r === 'object' && count(r.votes) > 0);
    const total = rows.reduce((sum, r) => sum + count(r.votes), 0);
    if (!total) return '';
    const parts = rows.map((r) => `${String(r.label || r.rule || 'other reasons')} ${count(r.votes)}`);
    return `Not counted: ${total} ${total === 1 ? 'vote' : 'votes'} (${parts.join(', ')})`;
  }

  function render(data) {
    const note = $('leaderboard-excluded');
    if (!note) return;
    const text = summary(data && data.excluded);
    note.textContent = text;
    note.hidden = !text;
    note.title = text ? 'Votes stored but left out of the ratings, by the rule that excluded them' : '';
  }

  window.Arena = Object.assign(window.Arena || {}, { Exclusions: { render, summary } });
})();
