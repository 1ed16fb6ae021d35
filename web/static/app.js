// Progressive enhancement only: every page works without this file.
// Date fields become native date pickers where the browser has one.
document.querySelectorAll('input[placeholder="YYYY-MM-DD"]').forEach(function (i) {
  if (i.value === '' || /^\d{4}-\d{2}-\d{2}$/.test(i.value)) { i.type = 'date'; }
});
