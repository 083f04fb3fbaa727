/**
 * PGlite settings for a small daemon: the smallest WebAssembly memory PGlite accepts (128 MiB)
 * and buffers sized for rollguard's few, small writes rather than PostgreSQL's defaults.
 */
export const PGLITE_OPTIONS = {
  initialMemory: 128 * 1024 * 1024,
  postgresqlconf: ['shared_buffers = 4MB', 'work_mem = 1MB', 'maintenance_work_mem = 2MB', 'wal_buffers = 256kB', 'temp_buffers = 1MB'],
};
