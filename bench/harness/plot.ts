/**
 * Line plots as PNG files: one or more panels side by side, each with a title, axes with ticks and
 * units, a log or linear x axis, and a legend; series keep their colour and marker across panels.
 * Drawn with pureimage (pure JS, no native canvas) and a TrueType font from the system (DejaVu Sans,
 * Debian's fonts-dejavu-core); without a font the plot cannot be labelled and is refused.
 */
import * as fs from 'node:fs';
import * as PImage from 'pureimage';

export interface Series {
  name: string;
  points: [number, number][];
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  /** Tick positions on x (default: nice steps, or the powers of ten on a log axis). */
  xTicks?: number[];
  /** Fixed y range; default 0..max of the data (with headroom). */
  yMin?: number;
  yMax?: number;
  series: Series[];
}

export interface Figure {
  title: string;
  subtitle?: string;
  panels: Panel[];
}

const FONT_PATHS = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf',
];
const FAMILY = 'PlotSans';
/** Colour per series name, so a peer looks the same in every plot. */
const COLOURS: Record<string, string> = {
  'kernel-redirect': '#7f7f7f', 'c-afxdp': '#1f77b4', 'xdp-ts': '#d62728', 'ovs-afxdp': '#2ca02c',
};
const SPARE_COLOURS = ['#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];
const PANEL_WIDTH = 620;
const HEIGHT = 480;

let fontLoaded = false;

export function plotFont(): string | null {
  return FONT_PATHS.find((p) => fs.existsSync(p)) ?? null;
}

function loadFont(): void {
  if (fontLoaded) return;
  const file = plotFont();
  if (!file) throw new Error(`no TrueType font for plot labels (looked for ${FONT_PATHS.join(', ')}); Debian: apt-get install fonts-dejavu-core`);
  PImage.registerFont(file, FAMILY).loadSync();
  fontLoaded = true;
}

/** "Nice" tick values covering [min, max]: steps of 1, 2 or 5 x 10^n. */
export function linearTicks(min: number, max: number, target = 6): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  const first = Math.floor(min / step + 1e-9) * step;
  for (let v = first; ticks.length === 0 || ticks[ticks.length - 1] < max - step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
  return ticks;
}

function formatTick(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (Math.abs(v) >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

function colourOf(name: string, index: number): string {
  return COLOURS[name] ?? SPARE_COLOURS[index % SPARE_COLOURS.length];
}

type Ctx = ReturnType<ReturnType<typeof PImage.make>['getContext']>;

function marker(ctx: Ctx, kind: number, x: number, y: number): void {
  const r = 4;
  ctx.beginPath();
  if (kind % 3 === 0) {
    ctx.arc(x, y, r, 0, Math.PI * 2);
  } else if (kind % 3 === 1) {
    ctx.rect(x - r, y - r, 2 * r, 2 * r);
  } else {
    ctx.moveTo(x, y - r - 1);
    ctx.lineTo(x + r + 1, y + r);
    ctx.lineTo(x - r - 1, y + r);
    ctx.closePath();
  }
  ctx.fill();
}

function text(ctx: Ctx, s: string, x: number, y: number, size: number, align: 'left' | 'center' | 'right' = 'left', colour = '#000000'): void {
  ctx.font = `${size}pt ${FAMILY}`;
  ctx.fillStyle = colour;
  const width = ctx.measureText(s).width;
  ctx.fillText(s, align === 'left' ? x : align === 'center' ? x - width / 2 : x - width, y);
}

function drawPanel(ctx: Ctx, panel: Panel, left: number, top: number, width: number, height: number, names: string[]): void {
  const plot = { x: left + 70, y: top + 40, w: width - 95, h: height - 150 };
  text(ctx, panel.title, left + width / 2, top + 22, 12, 'center');
  const all = panel.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) {
    text(ctx, 'no data', plot.x + plot.w / 2, plot.y + plot.h / 2, 12, 'center', '#888888');
    return;
  }
  const xs = all.map(([x]) => x);
  let xMin = Math.min(...xs);
  let xMax = Math.max(...xs);
  const fx = panel.xLog ? (v: number) => Math.log10(Math.max(v, 1e-12)) : (v: number) => v;
  if (panel.xLog) {
    xMin = 10 ** Math.floor(Math.log10(Math.max(xMin, 1e-12)));
    xMax = 10 ** Math.ceil(Math.log10(Math.max(xMax, 1e-12)));
  }
  if (panel.xTicks && !panel.xLog) {
    xMin = Math.min(xMin, ...panel.xTicks);
    xMax = Math.max(xMax, ...panel.xTicks);
  }
  if (xMax === xMin) {
    xMax = xMin + 1;
    xMin = Math.max(0, xMin - 1);
  }
  const yMin = panel.yMin ?? 0;
  const dataMax = Math.max(...all.map(([, y]) => y));
  const yTicks = linearTicks(yMin, panel.yMax ?? (dataMax > yMin ? dataMax * 1.05 : yMin + 1));
  const yMax = panel.yMax ?? yTicks[yTicks.length - 1];
  const px = (v: number) => plot.x + ((fx(v) - fx(xMin)) / (fx(xMax) - fx(xMin))) * plot.w;
  const py = (v: number) => plot.y + plot.h - ((v - yMin) / (yMax - yMin)) * plot.h;
  // Grid and ticks.
  ctx.lineWidth = 1;
  const xTicks = panel.xTicks ?? (panel.xLog
    ? Array.from({ length: Math.round(Math.log10(xMax / xMin)) + 1 }, (_, i) => xMin * 10 ** i)
    : linearTicks(xMin, xMax));
  for (const t of yTicks) {
    ctx.strokeStyle = '#e0e0e0';
    ctx.beginPath();
    ctx.moveTo(plot.x, py(t));
    ctx.lineTo(plot.x + plot.w, py(t));
    ctx.stroke();
    text(ctx, formatTick(t), plot.x - 6, py(t) + 4, 9, 'right');
  }
  for (const t of xTicks) {
    ctx.strokeStyle = '#e0e0e0';
    ctx.beginPath();
    ctx.moveTo(px(t), plot.y);
    ctx.lineTo(px(t), plot.y + plot.h);
    ctx.stroke();
    text(ctx, formatTick(t), px(t), plot.y + plot.h + 16, 9, 'center');
  }
  ctx.strokeStyle = '#000000';
  ctx.strokeRect(plot.x, plot.y, plot.w, plot.h);
  text(ctx, panel.xLabel, plot.x + plot.w / 2, plot.y + plot.h + 36, 10, 'center');
  // The y label goes above the axis (pureimage does not rotate text).
  text(ctx, panel.yLabel, plot.x, plot.y - 8, 10, 'left');
  // Series.
  for (const s of panel.series) {
    const index = names.indexOf(s.name);
    const colour = colourOf(s.name, index);
    const points = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 2;
    if (points.length > 1) {
      ctx.beginPath();
      points.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(px(x), py(y)) : ctx.lineTo(px(x), py(y))));
      ctx.stroke();
    }
    if (points.length <= 40) for (const [x, y] of points) marker(ctx, index, px(x), py(y));
  }
  // Legend under the plot.
  let lx = plot.x;
  let ly = plot.y + plot.h + 58;
  for (const s of panel.series) {
    const index = names.indexOf(s.name);
    const colour = colourOf(s.name, index);
    ctx.font = `10pt ${FAMILY}`;
    const w = ctx.measureText(s.name).width + 40;
    if (lx + w > plot.x + plot.w) {
      lx = plot.x;
      ly += 18;
    }
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(lx, ly - 4);
    ctx.lineTo(lx + 22, ly - 4);
    ctx.stroke();
    marker(ctx, index, lx + 11, ly - 4);
    text(ctx, s.name, lx + 28, ly, 10);
    lx += w;
  }
}

/** Draws the figure and writes it as PNG to `file`. */
export async function writePlot(file: string, figure: Figure): Promise<void> {
  loadFont();
  const width = PANEL_WIDTH * Math.max(1, figure.panels.length);
  const image = PImage.make(width, HEIGHT);
  const ctx = image.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, HEIGHT);
  text(ctx, figure.title, width / 2, 24, 14, 'center');
  if (figure.subtitle) {
    // One line if it fits, else split at the word nearest the middle (the panels start lower down).
    ctx.font = `9pt ${FAMILY}`;
    if (ctx.measureText(figure.subtitle).width <= width - 20) {
      text(ctx, figure.subtitle, width / 2, 42, 9, 'center', '#444444');
    } else {
      const words = figure.subtitle.split(' ');
      let best = 1;
      for (let i = 1; i < words.length; i++) {
        if (Math.abs(words.slice(0, i).join(' ').length - figure.subtitle.length / 2) < Math.abs(words.slice(0, best).join(' ').length - figure.subtitle.length / 2)) best = i;
      }
      text(ctx, words.slice(0, best).join(' '), width / 2, 40, 9, 'center', '#444444');
      text(ctx, words.slice(best).join(' '), width / 2, 54, 9, 'center', '#444444');
    }
  }
  const names = [...new Set(figure.panels.flatMap((p) => p.series.map((s) => s.name)))];
  figure.panels.forEach((panel, i) => drawPanel(ctx, panel, i * PANEL_WIDTH, 56, PANEL_WIDTH, HEIGHT - 56, names));
  await PImage.encodePNGToStream(image, fs.createWriteStream(file));
}
