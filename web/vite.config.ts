import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';
import { fileURLToPath } from 'node:url';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Two sibling apps (the lane and the back office) built as one multi-page bundle into dist/web,
// served by the service itself (src/http/static.ts) at /lane and /backoffice with shared /assets.
export default defineConfig({
  root: here('.'),
  base: '/',
  plugins: [vue()],
  resolve: {
    alias: {
      '@common': here('./common'),
      // Types only: the server's zod schemas and views, never server code in the bundle.
      '@server': here('../src'),
    },
  },
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      input: { lane: here('./lane/index.html'), backoffice: here('./backoffice/index.html') },
    },
  },
  logLevel: 'warn',
});
