// Submits the SAML hand-off form at once; without JavaScript the visible button does the same.
document.addEventListener('DOMContentLoaded', function () {
  var form = document.getElementById('autopost');
  if (form) form.submit();
});
