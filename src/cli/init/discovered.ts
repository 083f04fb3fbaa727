/**
 * What `rollguard init` knows of one running container: plain data, read from `docker inspect`
 * by discover.ts, so the policy generation is a pure function of a list of these.
 */
export interface DiscoveredContainer {
  id: string;
  /** Without Docker's leading slash. */
  name: string;
  /** The image as the container was created with it (`Config.Image`). */
  image: string;
  labels: Record<string, string>;
  /** `Config.Healthcheck.Test`, e.g. `['CMD-SHELL', 'curl -f http://localhost/ || exit 1']`; absent or `['NONE']` when there is none. */
  healthcheck?: string[];
  /** `HostConfig.NetworkMode`: `host`, `bridge`, `default`, a network's name, `container:ID`… */
  networkMode: string;
  /** TCP ports from EXPOSE or `--expose`. */
  exposedPorts: number[];
  /** TCP ports published on a host port fixed in the container's configuration (`-p 127.0.0.1:8080:80`). */
  published: PublishedPort[];
  /**
   * TCP container ports published on a host port Docker picks at each start (`-P`, `-p 80`,
   * Compose `ports: ["80"]`): reachable now, at another port after the next deploy.
   */
  randomlyPublished: number[];
  /**
   * Numeric values of port-like environment variables (`PORT`, `HTTP_PORT`…), by name: where a
   * host-network service says it listens. Only these are read from the environment, never the rest
   * (it holds secrets).
   */
  portEnv: Record<string, number>;
  /** rollguard itself (the container `init` runs in, or one running `rollguard run`): never guarded by its own policy. */
  isRollguard: boolean;
}

export interface PublishedPort {
  containerPort: number;
  /** As Docker reports it: `0.0.0.0`, `::`, `127.0.0.1`, an interface's address, or empty. */
  hostIp: string;
  hostPort: number;
}

/** An environment variable whose name says it holds a port. */
export const PORT_ENV_NAME = /^(?:[A-Z0-9_]*_)?(?:HTTP_)?PORT$/;
