export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const { root, hint, g, cells, cursor: start } = gridSetup(parentElement, data, true,
                                                           data.selected >= 0 ? data.selected : 0);
  let cursor = start;
  root.style.cursor = 'pointer';
  if (!data.lines) cells.forEach(c => { c.style.boxShadow = 'none'; });
  const show = () => cells.forEach((c, i) => {
    c.classList.toggle('cursor', i === cursor);
    c.classList.toggle('picked', !!data.mark && i === cursor);   // the pick stays marked, focused or not
  });
  hint.textContent = data.hint || '';
  show();
  root.onclick = (e) => {
    const i = cellAt(root, g, e);
    if (i < 0) return;
    cursor = i; root.dataset.cursor = String(cursor); show();
    setTriggerValue('cell', cursor);
  };
  root.onkeydown = (e) => {
    const next = movedCursor(cursor, g, e.key);
    if (next >= 0) {
      cursor = next; root.dataset.cursor = String(cursor); show(); e.preventDefault();
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault(); setTriggerValue('cell', cursor);
    }
  };
}
