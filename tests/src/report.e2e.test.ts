/**
 * report.html in a real browser: headless Chromium (Debian's `chromium`, driven by puppeteer-core) opens a report of
 * realistic results from file:// with every network request refused, and the page loads without a console error, a
 * page error or a request that is not file: or data:, and shows each section: the dataset as it is, the paper-style
 * tables, the per-class AP, TP-error and IoU tables, charts with axis titles, and BEV pictures with a scale bar and a
 * legend. Skipped where Chromium is missing, unless BEVZOO_REQUIRE_CHROMIUM=1 (CI), where that fails.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReports } from '@bevzoo/runner';
import { DETECTION_CLASSES, OCC_CLASSES } from '@bevzoo/nuscenes';
import { reportFixture } from './fixtures/report-results.js';

const CHROMIUM = process.env.BEVZOO_CHROMIUM ?? '/usr/bin/chromium';
const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} not found (apt-get install chromium, or set BEVZOO_CHROMIUM)`;
if (missing && process.env.BEVZOO_REQUIRE_CHROMIUM === '1') throw new Error(`BEVZOO_REQUIRE_CHROMIUM=1, but ${missing}`);
if (missing) console.warn(`report.e2e.test.ts: skipped, ${missing}`);

const DATASET = 'nuScenes v1.0-mini, split mini_val';

describe.skipIf(!!missing)(`report.html in headless Chromium${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-report-'));
    const results = reportFixture(dir);
    await writeReports(dir, results, { command: 'matrix', dataset: DATASET, preset: 'small', seeds: [0, 1], wall_seconds: 5400, failed: {}, skipped: [], resumed: [] });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e instanceof Error ? e.message : String(e)}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
    await page.setRequestInterception(true);
    page.on('request', (r) => {
      if (/^(file|data):/.test(r.url())) return void r.continue();
      problems.push(`request off the file: ${r.url()}`);
      void r.abort();
    });
    await page.goto(pathToFileURL(join(dir, 'report.html')).href, { waitUntil: 'load' });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
  });

  /** The element's text, after checking that it is there and visible (laid out with a size, not hidden). */
  const visibleText = (selector: string) =>
    page.$eval(selector, (el) => {
      const box = el.getBoundingClientRect();
      return { visible: el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }) && box.width > 0 && box.height > 0, text: (el.textContent ?? '').replace(/\s+/g, ' ') };
    });
  const expectVisible = async (selector: string) => {
    const r = await visibleText(selector);
    expect(r.visible, `${selector} is visible`).toBe(true);
    return r.text;
  };

  it('loads from file:// without errors or network requests', async () => {
    expect(await page.title()).toBe('bevzoo benchmark matrix');
    expect(problems).toEqual([]);
  });

  it('names the dataset as it is', async () => {
    const text = await expectVisible('#summary');
    expect(text).toContain(`Dataset: ${DATASET}`);
    expect(text).toContain('seeds 0, 1');
    expect(await page.$eval('body', (b) => b.textContent)).not.toMatch(/synthetic/i);
  });

  it('shows the paper-style tables', async () => {
    await expectVisible('#results');
    const det = await expectVisible('#det-paper');
    expect(det).toContain(`Detection (${DATASET}; mAP / NDS in %`);
    expect(det).toContain('+ centerpoint (distillbev)');
    expect(det).toMatch(/bevdet\s*[\d.]+ \/ [\d.]+\s*[\d.]+ \/ [\d.]+\s*[+-][\d.]+ \/ [+-][\d.]+/);
    expect(await expectVisible('#det-teachers')).toContain('centerpoint');
    expect(await expectVisible('#occ-paper')).toContain('+ occ-fusion (radocc)');
  });

  it('shows the per-class AP, TP-error and IoU tables', async () => {
    await expectVisible('#per-class');
    const header = (id: string) => page.$$eval(`#${id} th`, (ths) => ths.map((t) => t.textContent));
    expect(await header('det-per-class-ap')).toEqual(['run', 'mAP', ...DETECTION_CLASSES]);
    expect(await expectVisible('#det-per-class-ap')).toContain('bevdet ← centerpoint (distillbev)');
    expect(await header('det-tp-errors')).toEqual(['run', 'NDS (%)', 'mATE (m)', 'mASE (1−IoU)', 'mAOE (rad)', 'mAVE (m/s)', 'mAAE (1−acc)']);
    await expectVisible('#det-tp-errors');
    expect(await header('occ-per-class-iou')).toEqual(['run', 'mIoU', ...OCC_CLASSES.slice(0, -1)]);
    expect(await expectVisible('#occ-per-class-iou')).toContain('flashocc baseline');
    // Each detection run's devkit-style table: AP per distance threshold and the TP errors per class.
    const devkit = await expectVisible('#run-baseline-bevdet-seed0-per-class');
    expect(await header('run-baseline-bevdet-seed0-per-class')).toEqual(['class', 'AP', 'AP@0.5 m', 'AP@1.0 m', 'AP@2.0 m', 'AP@4.0 m', 'ATE', 'ASE', 'AOE', 'AVE', 'AAE']);
    expect(devkit).toMatch(/traffic_cone[\d.]+/);
  });

  it('draws training-loss and validation curves with axis titles', async () => {
    await expectVisible('#curves');
    const charts = await page.$$eval('#curves figure.chart svg', (svgs) =>
      svgs.map((s) => {
        const box = s.getBoundingClientRect();
        return { texts: Array.from(s.querySelectorAll('text'), (t) => t.textContent), lines: s.querySelectorAll('path').length, w: box.width, h: box.height };
      }));
    // bevdet: loss, mAP, NDS; detection teachers: loss, mAP, NDS; flashocc: loss, mIoU.
    expect(charts).toHaveLength(8);
    for (const c of charts) {
      expect(c.w).toBeGreaterThan(200);
      expect(c.h).toBeGreaterThan(150);
      expect(c.texts).toContain('step');
      expect(c.lines).toBeGreaterThan(3);
    }
    const titles = charts.map((c) => c.texts.find((t) => t?.includes(': ')));
    expect(titles).toEqual(expect.arrayContaining(['bevdet: training loss', 'bevdet: validation mAP', 'bevdet: validation NDS', 'flashocc: validation mIoU']));
    const bevdetLoss = charts.find((c) => c.texts.includes('bevdet: training loss'))!;
    expect(bevdetLoss.texts).toEqual(expect.arrayContaining(['loss (moving average)', 'baseline, seed 0', '← centerpoint (distillbev), seed 1']));
    expect(charts.find((c) => c.texts.includes('flashocc: validation mIoU'))!.texts).toContain('mIoU (%)');
  });

  it('draws BEV pictures with a scale bar and a legend', async () => {
    await expectVisible('#runs');
    expect(await page.$$eval('#runs section.run', (s) => s.length)).toBe(7);
    expect(await page.$$eval('#runs figure.bev', (f) => f.length)).toBe(5); // the detection runs
    const bev = '#run-teacher-centerpoint figure.bev';
    expect(await expectVisible(`${bev} .scale-bar`)).toBe('10 m');
    const legend = await expectVisible(`${bev} .legend`);
    for (const s of [...DETECTION_CLASSES, 'ground truth', 'prediction (score ≥ 0.3)', 'ego vehicle']) expect(legend).toContain(s);
    expect(await page.$$eval(`${bev} polygon[stroke-dasharray]`, (p) => p.length)).toBe(14); // the ground-truth boxes
  });
});
