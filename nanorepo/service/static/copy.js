// nanorepo landing pages: copy buttons. The page's only script (CSP script-src 'self'):
// a button with data-copy="ID" copies the text of the element with that id.
document.addEventListener('click', event => {
  const button = event.target.closest('button.nr-copy');
  if (!button) {
    return;
  }
  const source = document.getElementById(button.dataset.copy || '');
  if (!source || !navigator.clipboard) {
    return;
  }
  navigator.clipboard.writeText(source.textContent.trim()).then(
    () => {
      button.textContent = 'Copied';
      setTimeout(() => (button.textContent = 'Copy'), 1500);
    },
    () => {
      button.textContent = 'Select and copy';
    }
  );
});
