/**
 * The report's charts: line charts drawn by Apache ECharts' server-side SVG renderer (no DOM, no canvas), inlined in
 * report.html as plain SVG, so the page needs no script, font or network to open.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as echarts from 'echarts';

export interface LineSeries {
  name: string;
  /** [x, y] points in x order. */
  points: [number, number][];
  color?: string;
}

export interface LineChart {
  title: string;
  xName: string;
  yName: string;
  series: LineSeries[];
  width?: number;
  height?: number;
}

/** A line chart as an SVG string: title, labelled axes, a legend below the plot. */
export function lineChartSvg(c: LineChart): string {
  const width = c.width ?? 380;
  const legendRows = c.series.length; // one line each, below the x axis's title
  const height = (c.height ?? 250) + 17 * legendRows;
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({
      animation: false,
      title: { text: c.title, left: 'center', top: 4, textStyle: { fontSize: 13 } },
      legend: { orient: 'vertical', bottom: 4, left: 64, itemGap: 5, itemWidth: 18, itemHeight: 8, textStyle: { fontSize: 11 } },
      grid: { left: 64, right: 18, top: 36, bottom: 50 + 17 * legendRows },
      xAxis: { type: 'value', name: c.xName, nameLocation: 'middle', nameGap: 26, min: 0, minInterval: 1, splitLine: { show: false } },
      yAxis: { type: 'value', name: c.yName, nameLocation: 'middle', nameGap: 46, scale: true },
      series: c.series.map((s) => ({
        type: 'line',
        name: s.name,
        data: s.points,
        silent: true,
        showSymbol: s.points.length <= 20,
        symbolSize: 5,
        lineStyle: { width: 1.6 },
        ...(s.color ? { color: s.color } : {}),
      })),
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/** The (step, loss) records of a train.jsonl log with a finite loss (unreadable lines skipped); none when the file is missing. */
export function readLossLog(file: string): { step: number; loss: number }[] {
  if (!existsSync(file)) return [];
  const out: { step: number; loss: number }[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    try {
      const r = JSON.parse(line) as { step?: unknown; loss?: unknown };
      if (typeof r.step === 'number' && typeof r.loss === 'number' && Number.isFinite(r.step) && Number.isFinite(r.loss)) out.push({ step: r.step, loss: r.loss });
    } catch {
      // an empty or torn line
    }
  }
  return out;
}

/**
 * A loss curve as plotted: a trailing moving average over max(1, ⌊n/50⌋) steps, thinned to at most `maxPoints` points
 * (the last point always kept).
 */
export function smoothLoss(pts: { step: number; loss: number }[], maxPoints = 300): [number, number][] {
  const k = Math.max(1, Math.floor(pts.length / 50));
  const every = Math.max(1, Math.ceil(pts.length / maxPoints));
  const out: [number, number][] = [];
  let sum = 0;
  pts.forEach((p, i) => {
    sum += p.loss;
    if (i >= k) sum -= pts[i - k]!.loss;
    if (i % every === 0 || i === pts.length - 1) out.push([p.step, sum / Math.min(k, i + 1)]);
  });
  return out;
}
