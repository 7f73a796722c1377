// The registration form: a chosen SP metadata file is read into the metadata field (nothing is
// uploaded until the form is sent). Without JavaScript the metadata is pasted into the field.
document.addEventListener('DOMContentLoaded', function () {
  var file = document.getElementById('samlMetadataFile');
  var text = document.getElementById('samlMetadata');
  if (!file || !text) return;
  file.addEventListener('change', function () {
    if (!file.files || !file.files[0]) return;
    file.files[0].text().then(function (xml) {
      text.value = xml;
      var saml = document.getElementById('protocol-saml');
      if (saml) saml.checked = true;
    });
  });
});
