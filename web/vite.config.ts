import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// Built assets go to web/dist, which `abyssal serve` serves at /. Hashed names under assets/
// are cached for a year by the server; index.html is never cached.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 400 },
  test: { include: ["tests/**/*.test.ts"], environment: "node" },
});
