/**
 * Charts as SVG drawn on the server: no script, no CDN, nothing fetched, so the dashboard works
 * offline and under the strict content security policy. Colours come from CSS classes
 * (`chart-series-N` in brana.css). Every chart is an image with a title; the page shows the same
 * numbers as a table beside it.
 */

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function short(text: string, length: number): string {
  const chars = Array.from(text);
  return chars.length <= length ? text : `${chars.slice(0, length - 1).join('')}…`;
}

/** A round step for about `count` gridlines up to `max`. */
function niceStep(max: number, count = 4): number {
  const raw = Math.max(max, 1) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw) ?? 10 * magnitude;
  return Math.max(1, Math.round(step));
}

const format = (value: number) => new Intl.NumberFormat('cs-CZ').format(value);

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function open(id: string, title: string, frame: Frame): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${frame.width} ${frame.height}" role="img" aria-labelledby="${id}-title"><title id="${id}-title">${escape(title)}</title>`;
}

function yAxis(frame: Frame, max: number): { scale: (value: number) => number; svg: string } {
  const step = niceStep(max);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const plotHeight = frame.height - frame.top - frame.bottom;
  const scale = (value: number) => frame.top + plotHeight - (value / top) * plotHeight;
  let svg = '';
  for (let value = 0; value <= top; value += step) {
    const y = scale(value).toFixed(1);
    svg += `<line class="chart-grid" x1="${frame.left}" x2="${frame.width - frame.right}" y1="${y}" y2="${y}"/>`;
    svg += `<text class="chart-tick" x="${frame.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${format(value)}</text>`;
  }
  return { scale, svg };
}

function xLabels(frame: Frame, labels: readonly string[], band: number): string {
  const every = Math.max(1, Math.ceil(labels.length / 12));
  return labels
    .map((label, i) => (i % every === 0 ? `<text class="chart-tick" x="${(frame.left + band * (i + 0.5)).toFixed(1)}" y="${frame.height - frame.bottom + 16}" text-anchor="middle">${escape(label)}</text>` : ''))
    .join('');
}

export interface Series {
  name: string;
  values: readonly number[];
}

/** Stacked columns: one per label, one segment per series. */
export function stackedColumns(id: string, title: string, labels: readonly string[], series: readonly Series[]): string {
  const frame: Frame = { width: 720, height: 280, left: 56, right: 8, top: 12, bottom: 28 };
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const { scale, svg: axis } = yAxis(frame, Math.max(0, ...totals));
  const band = (frame.width - frame.left - frame.right) / Math.max(1, labels.length);
  let bars = '';
  labels.forEach((label, i) => {
    let base = 0;
    series.forEach((s, k) => {
      const value = s.values[i] ?? 0;
      if (!value) return;
      const y0 = scale(base);
      const y1 = scale(base + value);
      base += value;
      bars += `<rect class="chart-series-${k % 12}" x="${(frame.left + band * i + band * 0.15).toFixed(1)}" y="${y1.toFixed(1)}" width="${(band * 0.7).toFixed(1)}" height="${Math.max(0, y0 - y1).toFixed(1)}"><title>${escape(`${label} · ${s.name}: ${format(value)}`)}</title></rect>`;
    });
  });
  return `${open(id, title, frame)}${axis}${bars}${xLabels(frame, labels, band)}</svg>`;
}

/** A line with its area: one point per label. */
export function lineWithArea(id: string, title: string, labels: readonly string[], values: readonly number[]): string {
  const frame: Frame = { width: 720, height: 240, left: 56, right: 8, top: 12, bottom: 28 };
  const { scale, svg: axis } = yAxis(frame, Math.max(0, ...values));
  const band = (frame.width - frame.left - frame.right) / Math.max(1, labels.length);
  const points = values.map((value, i) => [frame.left + band * (i + 0.5), scale(value)] as const);
  const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  const baseline = scale(0).toFixed(1);
  const area = points.length ? `<polygon class="chart-area" points="${points[0]![0].toFixed(1)},${baseline} ${line} ${points[points.length - 1]![0].toFixed(1)},${baseline}"/>` : '';
  const dots = points.map(([x, y], i) => `<circle class="chart-point" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3"><title>${escape(`${labels[i]}: ${format(values[i]!)}`)}</title></circle>`).join('');
  return `${open(id, title, frame)}${axis}${area}<polyline class="chart-line" points="${line}"/>${dots}${xLabels(frame, labels, band)}</svg>`;
}

/** Horizontal bars, one row per item, largest first as given. */
export function horizontalBars(id: string, title: string, items: ReadonlyArray<{ label: string; value: number }>): string {
  const row = 26;
  const frame: Frame = { width: 720, height: 16 + row * Math.max(1, items.length), left: 260, right: 64, top: 8, bottom: 8 };
  const max = Math.max(1, ...items.map((item) => item.value));
  const plot = frame.width - frame.left - frame.right;
  const rows = items
    .map((item, i) => {
      const y = frame.top + row * i;
      const width = (item.value / max) * plot;
      return (
        `<text class="chart-label" x="${frame.left - 8}" y="${y + row / 2}" text-anchor="end" dominant-baseline="middle">${escape(short(item.label, 40))}</text>` +
        `<rect class="chart-series-${i % 12}" x="${frame.left}" y="${y + 4}" width="${width.toFixed(1)}" height="${row - 8}"><title>${escape(`${item.label}: ${format(item.value)}`)}</title></rect>` +
        `<text class="chart-tick" x="${(frame.left + width + 6).toFixed(1)}" y="${y + row / 2}" dominant-baseline="middle">${format(item.value)}</text>`
      );
    })
    .join('');
  return `${open(id, title, frame)}${rows}</svg>`;
}
