/**
 * A replica's state as container signals read it: a Docker container's `inspect`, or a Swarm
 * task described the same way (its restarts are the tasks Swarm started after it in its slot).
 */
export interface ReplicaView {
  Id: string;
  RestartCount: number;
  State: {
    Running: boolean;
    Restarting: boolean;
    OOMKilled: boolean;
    ExitCode?: number;
    Paused?: boolean;
    Health?: { Status: string } | null;
  };
}
