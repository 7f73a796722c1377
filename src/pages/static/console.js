// The print button of the court report (the pages run no other script).
for (const button of document.querySelectorAll('[data-print]')) button.addEventListener('click', () => window.print());
