/**
 * EC2 over the query protocol. Each action is an entry of a table, so more
 * actions plug in without touching the dispatch: an action gets the request
 * and its parameters and returns the XML inside its <ActionResponse>, after
 * the requestId.
 */
import { AwsError } from './aws-error.js';
import { ec2Response, queryBoolean, queryParams } from './query-protocol.js';
import type { CloudService } from './server.js';
import type { CloudRequest } from './service.js';

export type Ec2Action = (request: CloudRequest, params: URLSearchParams) => Promise<string>;

export type Ec2Actions = Readonly<Record<string, Ec2Action>>;

export function ec2Service(actions: Ec2Actions): CloudService {
  return {
    name: 'ec2',
    protocol: 'ec2',
    maxBodyBytes: 1024 * 1024,
    handler: async (request) => {
      const params = queryParams(request);
      const action = params.get('Action') ?? '';
      const run = Object.hasOwn(actions, action) ? actions[action] : undefined;
      if (run === undefined)
        throw new AwsError(
          400,
          'InvalidAction',
          `The action ${action || '(none)'} is not valid for this web service.`,
        );
      if (queryBoolean(params, 'DryRun'))
        throw new AwsError(
          412,
          'DryRunOperation',
          'Request would have succeeded, but DryRun flag is set.',
        );
      return ec2Response(action, await run(request, params), request.requestId);
    },
  };
}
