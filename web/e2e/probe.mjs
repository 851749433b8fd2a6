// Measurements shared by the browser test and the benchmark: the time to
// the first map drawn with live segments, and the frame rate while the map
// is dragged (pointer events dispatched in the page once per animation
// frame, so the figure is the page's drawing rate, not the driver's
// round trips). Reads window.__zhilu.perf, which the console fills.

export const LAUNCH_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** First contentful paint and first live map (ms from navigation start). */
export async function paintTimes(page) {
  await page.waitForFunction(() => performance.getEntriesByName("zhilu-live-map").length > 0, null, { timeout: 60_000 });
  return page.evaluate(() => ({
    fcp_ms: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
    live_map_ms: Math.round(performance.getEntriesByName("zhilu-live-map")[0].startTime),
  }));
}

/** Drags the map for `ms` and reports frames per second, the 95th
 * percentile frame interval and the time spent drawing a frame. */
export function panFrameRate(page, ms = 3000, label = "") {
  return page.evaluate(
    async ([ms, label]) => {
      const cv = document.querySelector(".map-canvas");
      const r = cv.getBoundingClientRect();
      const at = (x, y) => ({ clientX: r.left + x, clientY: r.top + y, pointerId: 1, bubbles: true, isPrimary: true });
      const cx = r.width / 2;
      const cy = r.height / 2;
      cv.dispatchEvent(new PointerEvent("pointerdown", at(cx, cy)));
      const t0 = performance.now();
      await new Promise((done) => {
        const step = (now) => {
          const i = (now - t0) / 16;
          cv.dispatchEvent(new PointerEvent("pointermove", at(cx + 150 * Math.sin(i / 20), cy + 60 * Math.cos(i / 25))));
          if (now - t0 < ms) requestAnimationFrame(step);
          else done();
        };
        requestAnimationFrame(step);
      });
      const t1 = performance.now();
      cv.dispatchEvent(new PointerEvent("pointerup", at(cx, cy)));
      await new Promise((r2) => requestAnimationFrame(() => requestAnimationFrame(r2)));
      const p = window.__zhilu.perf;
      const idx = p.frames.map((f, i) => [f, i]).filter(([f]) => f >= t0 && f <= t1 + 20).map(([, i]) => i);
      const fr = idx.map((i) => p.frames[i]);
      const dr = idx.map((i) => p.drawMs[i]).sort((a, b) => a - b);
      const gaps = fr.slice(1).map((f, i) => f - fr[i]).sort((a, b) => a - b);
      const m = window.__zhilu.model;
      const q = (a, f) => a[Math.min(a.length - 1, Math.floor(a.length * f))];
      return {
        view: label,
        frames: fr.length,
        fps: Math.round(((fr.length - 1) / (fr[fr.length - 1] - fr[0])) * 10000) / 10,
        frame_p95_ms: Math.round(q(gaps, 0.95) * 10) / 10,
        draw_ms_mean: Math.round((dr.reduce((a, b) => a + b, 0) / dr.length) * 100) / 100,
        draw_ms_p95: Math.round(q(dr, 0.95) * 100) / 100,
        segments: m.state.directions.reduce((n, d) => n + d.segments.length, 0),
        vehicles: m.vehicles.size,
      };
    },
    [ms, label],
  );
}
