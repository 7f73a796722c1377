// The logout page goes on once every frame telling a service of the logout has loaded (the window's
// load event waits for them), or after a few seconds whatever the frames do. Without JavaScript the
// visible button or link does the same.
(function () {
  var done = false;
  function next() {
    if (done) return;
    done = true;
    var target = document.getElementById('after-frames');
    if (!target) return;
    if (target.tagName === 'FORM') target.submit();
    else window.location.assign(target.getAttribute('href'));
  }
  window.addEventListener('load', next);
  setTimeout(next, 5000);
})();
