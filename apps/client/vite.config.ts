import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Three pages: the volunteer page (/), the admin console (/admin) and the leaderboard
// (/leaderboard). The training loop runs in a
// module Web Worker; WGSL sources come in as `?raw` strings from @meshgrad/shaders.
const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: {
      input: {
        main: resolve(here, 'index.html'),
        admin: resolve(here, 'admin.html'),
        leaderboard: resolve(here, 'leaderboard.html'),
      },
    },
  },
  worker: { format: 'es' },
  server: {
    proxy: {
      '/api': 'http://localhost:8080',
      '/socket.io': { target: 'http://localhost:8080', ws: true },
    },
  },
});
