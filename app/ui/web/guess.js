export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const { root, hint, g, cells, cursor: start } = gridSetup(parentElement, data, !!data.pixelated,
                                                           Math.max(0, data.mask.indexOf(1)));
  const palette = parentElement.querySelector('.mae-palette');
  const mask = Array.from(data.mask, v => (v ? 1 : 0));
  const levels = Array.from(data.levels, Number);
  const brush = data.brush;   // grey levels; index brush.length = the eraser
  let pick = Number(root.dataset.pick || data.pick);
  let cursor = start;
  if (palette.children.length !== brush.length + 1) {
    palette.replaceChildren();
    [...brush, -1].forEach((v, k) => {
      const b = document.createElement('button');
      b.className = 'mae-swatch';
      b.type = 'button';
      b.dataset.k = String(k);
      if (v >= 0) { const c = Math.round(255 * v); b.style.background = `rgb(${c},${c},${c})`;
                    b.title = `Grey ${Math.round(100 * v)}% (key ${k + 1})`; b.setAttribute('aria-label', b.title); }
      else { b.textContent = '⌫'; b.title = 'Eraser (key 0)'; b.setAttribute('aria-label', 'Eraser'); }
      palette.appendChild(b);
    });
  }
  const swatches = Array.from(palette.children);
  const show = () => {
    swatches.forEach((s, k) => s.classList.toggle('on', k === pick));
    cells.forEach((c, i) => {
      const painted = mask[i] === 1 && levels[i] >= 0;
      c.classList.toggle('hidden', mask[i] === 1 && !painted);
      c.classList.toggle('painted', painted);
      c.classList.toggle('visible', mask[i] !== 1);
      c.classList.toggle('cursor', i === cursor);
      c.style.backgroundColor = painted ? `rgb(${Math.round(255 * levels[i])},${Math.round(255 * levels[i])},`
                                          + `${Math.round(255 * levels[i])})` : '';
    });
    const n = mask.reduce((a, b) => a + b, 0);
    const done = levels.filter((v, i) => mask[i] === 1 && v >= 0).length;
    hint.textContent = `${done} of ${n} hidden patches painted · drag to paint · keys: arrows, 1-5, space`;
  };
  // a grey is chosen here only: a rerun per click would redraw the painter while a stroke starts. The stroke sends it
  const choose = (k) => { pick = k; root.dataset.pick = String(k); show(); };
  const send = () => setTriggerValue('levels', levels.concat([pick]));   // the L levels, then the brush in use
  swatches.forEach((s, k) => { s.onclick = () => choose(k); });
  show();
  const value = () => (pick < brush.length ? brush[pick] : -1);
  const setCell = (i) => {
    if (i >= 0 && mask[i] === 1 && levels[i] !== value()) { levels[i] = value(); show(); }
  };
  strokes(root, g, (i) => { cursor = i; setCell(i); }, setCell,
          () => { show(); send(); });
  root.onkeydown = (e) => {
    const next = movedCursor(cursor, g, e.key);
    if (next >= 0) {
      cursor = next; root.dataset.cursor = String(cursor); show(); e.preventDefault();
    } else if (/^[0-9]$/.test(e.key) && Number(e.key) <= brush.length) {
      choose(e.key === '0' ? brush.length : Number(e.key) - 1);
      e.preventDefault();
    } else if (e.key === ' ' || e.key === 'Enter') {
      e.preventDefault();
      if (mask[cursor] === 1) { levels[cursor] = value(); show(); send(); }
    }
  };
}
