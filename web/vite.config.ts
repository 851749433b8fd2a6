// Vite build of the operators' console. Output goes to dist/, which the
// server embeds (crates/server/src/console.rs). `npm run dev` proxies the
// API to a running `zhilu demo` on :8080.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
