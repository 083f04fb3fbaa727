import { z } from 'zod';
import { gitMatch } from './runbook-schema.js';

const name = z.string().min(1);

/** How a service's replicas are recognised: the `match` key of a service. */
export const match = z
  .strictObject({
    container: name.optional().describe('Container name.'),
    compose: z
      .strictObject({
        project: name.describe('Compose project name (the com.docker.compose.project label).'),
        service: name.describe('Compose service name (the com.docker.compose.service label).'),
      })
      .optional()
      .describe('Docker Compose project and service.'),
    labels: z.record(z.string(), z.string()).optional().describe('Container labels that must all be present with these values.'),
    swarm_service: name.optional().describe('A Docker Swarm service, by name: rollguard watches every task of it and reverts the service (a manager node\'s engine).'),
    stack: z
      .strictObject({
        name: name.describe('The stack name given to `docker stack deploy`.'),
        service: name.describe('The service as the stack file names it (the Swarm service is NAME_SERVICE).'),
      })
      .optional()
      .describe('A service of a Swarm stack (`docker stack deploy`).'),
    git: gitMatch.optional(),
  })
  .superRefine((m, ctx) => {
    const forms = [m.container, m.compose, m.labels, m.swarm_service, m.stack, m.git].filter((v) => v !== undefined).length;
    if (forms !== 1) ctx.addIssue({ code: 'custom', message: 'set exactly one of container, compose, labels, swarm_service, stack or git' });
    if (m.labels && Object.keys(m.labels).length === 0) ctx.addIssue({ code: 'custom', path: ['labels'], message: 'must name at least one label' });
  })
  .describe('How this service\'s replicas are recognised: exactly one of container, compose or labels (Docker containers), swarm_service or stack (Swarm services), or git (a work tree deployed by commits).');
