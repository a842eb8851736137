function gridSetup(parentElement, data, pixelated, firstCursor) {
  const wrap = parentElement.querySelector('.mae-wrap');
  const root = parentElement.querySelector('.mae-painter');
  const hint = parentElement.querySelector('.mae-hint');
  const g = data.grid;
  wrap.style.maxWidth = data.max_css || (data.max_px + 'px');
  root.style.gridTemplateColumns = `repeat(${g}, 1fr)`;
  root.style.gridTemplateRows = `repeat(${g}, 1fr)`;
  root.style.backgroundImage = `url(${data.image})`;
  root.classList.toggle('pixelated', pixelated);
  if (root.children.length !== g * g) {
    root.replaceChildren();
    for (let i = 0; i < g * g; i++) {
      const c = document.createElement('div');
      c.className = 'mae-cell';
      c.dataset.i = String(i);
      c.setAttribute('role', 'gridcell');
      root.appendChild(c);
    }
    root.dataset.cursor = String(firstCursor);
  }
  const cursor = Math.max(0, Math.min(g * g - 1, Number(root.dataset.cursor || 0)));
  return { root, hint, g, cells: Array.from(root.children), cursor };
}
function cellAt(root, g, e) {
  const r = root.getBoundingClientRect();
  const col = Math.floor((e.clientX - r.left) / r.width * g);
  const row = Math.floor((e.clientY - r.top) / r.height * g);
  return (col < 0 || row < 0 || col >= g || row >= g) ? -1 : row * g + col;
}
function movedCursor(cursor, g, key) {  // the cell an arrow/Home/End key moves to, or -1 for any other key
  const r = Math.floor(cursor / g), c = cursor % g;
  const moves = { ArrowLeft: [r, c - 1], ArrowRight: [r, c + 1], ArrowUp: [r - 1, c], ArrowDown: [r + 1, c],
                  Home: [0, 0], End: [g - 1, g - 1] };
  if (!(key in moves)) return -1;
  const [nr, nc] = moves[key];
  return Math.max(0, Math.min(g - 1, nr)) * g + Math.max(0, Math.min(g - 1, nc));
}
function strokes(root, g, begin, paint, end) {  // press begin(cell), drag paint(cell), release end()
  let down = false;
  root.onpointerdown = (e) => {
    const i = cellAt(root, g, e);
    if (i < 0) return;
    e.preventDefault();
    root.focus({ preventScroll: true });
    down = true; root.dataset.cursor = String(i);
    begin(i);
    try { root.setPointerCapture(e.pointerId); } catch (err) {}
  };
  root.onpointermove = (e) => { if (down) paint(cellAt(root, g, e)); };
  const finish = () => { if (!down) return; down = false; end(); };
  root.onpointerup = finish;
  root.onpointercancel = finish;
  root.onlostpointercapture = finish;
}
