// Chart geometry for the reports page. Code computes numbers only; the SVG markup is in
// views/reports.hbs, where every text (agent names, failure reasons) is escaped by `{{ }}` like
// all other page text. No script draws anything, so the charts need nothing beyond the CSP's
// defaults (presentation attributes, no inline style).

export interface Series { name: string, fill: string, values: number[], unit?: (n: number) => string }

export interface ColumnChart {
  label: string
  width: number
  height: number
  baseline: number
  plotLeft: number
  plotRight: number
  bars: Array<{ x: number, y: number, width: number, height: number, fill: string, title: string }>
  labels: Array<{ x: number, y: number, text: string, anchor: 'start' | 'middle' | 'end' }>
  legend: Array<{ x: number, fill: string, text: string }>
}

const WIDTH = 720
const HEIGHT = 200
const LEFT = 48
const RIGHT = 8
const TOP = 24
const BOTTOM = 22

/** A round number at or above `n` for the top of the axis: 1, 2, 5 × a power of ten. */
function niceMax (n: number): number {
  if (n <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(n))
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p
  return 10 * p
}

const plain = (n: number): string => Number.isInteger(n) ? String(n) : n.toFixed(2)

/** Columns per category (a day, a rating), one per series side by side. */
export function columns (label: string, categories: string[], series: Series[], opts: { categoryLabel?: (c: string) => string } = {}): ColumnChart {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)))
  const plotWidth = WIDTH - LEFT - RIGHT
  const plotHeight = HEIGHT - TOP - BOTTOM
  const slot = plotWidth / Math.max(1, categories.length)
  const gap = slot > 6 ? slot * 0.2 : 0
  const barWidth = (slot - gap) / Math.max(1, series.length)
  const baseline = TOP + plotHeight
  const bars: ColumnChart['bars'] = []
  categories.forEach((c, i) => {
    series.forEach((s, j) => {
      const v = s.values[i] ?? 0
      const h = v / max * plotHeight
      bars.push({ x: round(LEFT + i * slot + gap / 2 + j * barWidth), y: round(baseline - h), width: round(Math.max(barWidth, 0.5)), height: round(h), fill: s.fill, title: `${c}: ${(s.unit ?? plain)(v)} ${s.name}` })
    })
  })
  const name = opts.categoryLabel ?? ((c: string) => c)
  // The first, middle and last category under the axis; the axis's top and zero on its left.
  const marks = [...new Set([0, Math.floor((categories.length - 1) / 2), categories.length - 1])].filter((i) => i >= 0 && i < categories.length)
  const labels: ColumnChart['labels'] = [
    { x: LEFT - 6, y: TOP + 4, text: (series[0]?.unit ?? plain)(max), anchor: 'end' },
    { x: LEFT - 6, y: baseline, text: '0', anchor: 'end' },
    ...marks.map((i) => ({ x: round(LEFT + i * slot + slot / 2), y: HEIGHT - 6, text: name(categories[i]), anchor: (categories.length === 1 ? 'middle' : i === 0 ? 'start' : i === categories.length - 1 ? 'end' : 'middle') as 'start' | 'middle' | 'end' }))
  ]
  const legend = series.map((s, j) => ({ x: LEFT + j * 140, fill: s.fill, text: s.name }))
  return { label, width: WIDTH, height: HEIGHT, baseline, plotLeft: LEFT, plotRight: WIDTH - RIGHT, bars, labels, legend }
}

export interface BarChart {
  label: string
  width: number
  height: number
  rows: Array<{ y: number, textY: number, barX: number, width: number, fill: string, label: string, text: string }>
}

/** Horizontal bars, one per row (a rating, a failure reason), labelled with their value. */
export function bars (label: string, rows: Array<{ label: string, value: number, text: string }>, fill: string): BarChart {
  const labelWidth = 260
  const barSpace = WIDTH - labelWidth - 120
  const rowHeight = 24
  const max = Math.max(0, ...rows.map((r) => r.value))
  return {
    label,
    width: WIDTH,
    height: Math.max(1, rows.length) * rowHeight + 4,
    rows: rows.map((r, i) => ({ y: i * rowHeight + 4, textY: i * rowHeight + 19, barX: labelWidth, width: round(max === 0 ? 0 : r.value / max * barSpace), fill, label: r.label.length > 48 ? `${r.label.slice(0, 47)}…` : r.label, text: r.text }))
  }
}

function round (n: number): number {
  return Math.round(n * 10) / 10
}
