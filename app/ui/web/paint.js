export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const { root, hint, g, cells, cursor: start } = gridSetup(parentElement, data, !!data.pixelated, 0);
  const mask = Array.from(data.mask, v => (v ? 1 : 0));
  let cursor = start;
  const show = () => {
    cells.forEach((c, i) => {
      c.classList.toggle('hidden', mask[i] === 1);
      c.classList.toggle('cursor', i === cursor);
    });
    const n = mask.reduce((a, b) => a + b, 0);
    hint.textContent = `${n} of ${g * g} hidden (${Math.round(100 * n / (g * g))}%) · drag to paint · ` +
      `arrow keys + space`;
  };
  show();
  let mode = null;
  const setCell = (i) => {
    if (i >= 0 && mask[i] !== mode) { mask[i] = mode; cells[i].classList.toggle('hidden', mode === 1); }
  };
  strokes(root, g, (i) => { mode = mask[i] ? 0 : 1; cursor = i; setCell(i); }, setCell,
          () => { mode = null; show(); setTriggerValue('mask', mask.slice()); });
  root.onkeydown = (e) => {
    const next = movedCursor(cursor, g, e.key);
    if (next >= 0) {
      cursor = next; root.dataset.cursor = String(cursor); show(); e.preventDefault();
    } else if (e.key === ' ' || e.key === 'Enter') {
      mask[cursor] = mask[cursor] ? 0 : 1;
      show();
      e.preventDefault();
      setTriggerValue('mask', mask.slice());
    }
  };
}
