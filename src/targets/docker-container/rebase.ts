import { isDeepStrictEqual } from 'node:util';

/** The part of an image's config that a container created from it inherits unless it sets its own. */
export interface ImageDefaults {
  Cmd?: unknown; Entrypoint?: unknown; WorkingDir?: unknown; User?: unknown; Healthcheck?: unknown; StopSignal?: unknown;
  ExposedPorts?: unknown; Volumes?: unknown; Shell?: unknown; OnBuild?: unknown;
  Env?: string[] | null; Labels?: Record<string, string> | null;
}

const INHERITED = ['Cmd', 'Entrypoint', 'WorkingDir', 'User', 'Healthcheck', 'StopSignal', 'ExposedPorts', 'Volumes', 'Shell', 'OnBuild'] as const;

/**
 * A container's config (`docker inspect`'s Config) moved onto another image (`rollback --to`):
 * every value it only inherited from its old image — equal to that image's own — is dropped, so
 * Docker fills it from the new image at create, as `docker run NEW` would; what the operator set
 * (a command, an environment variable, a label of its own) is kept.
 */
export function rebaseConfig(config: Record<string, unknown>, oldImage: ImageDefaults): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const key of INHERITED) {
    if (key in out && isDeepStrictEqual(out[key] ?? null, oldImage[key] ?? null)) delete out[key];
  }
  const inheritedEnv = new Set(oldImage.Env ?? []);
  if (Array.isArray(out.Env)) out.Env = (out.Env as string[]).filter((e) => !inheritedEnv.has(e));
  const labels = out.Labels as Record<string, string> | null | undefined;
  if (labels && oldImage.Labels) {
    out.Labels = Object.fromEntries(Object.entries(labels).filter(([k, v]) => oldImage.Labels?.[k] !== v));
  }
  return out;
}
