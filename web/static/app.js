// Progressive enhancement only: every page works without this file.
// Date fields become native date pickers where the browser has one.
document.querySelectorAll('input[placeholder="YYYY-MM-DD"]').forEach(function (i) {
  if (i.value === '' || /^\d{4}-\d{2}-\d{2}$/.test(i.value)) { i.type = 'date'; }
});
// On a phone the navigation scrolls sideways: bring the current page's tab
// into view.
(function () {
  var cur = document.querySelector('header nav [aria-current="page"]');
  if (!cur) { return; }
  var nav = cur.parentNode;
  if (nav.scrollWidth > nav.clientWidth) {
    nav.scrollLeft += cur.getBoundingClientRect().left - nav.getBoundingClientRect().left - 12;
  }
})();
