/**
 * STS over the query protocol: GetCallerIdentity, and AssumeRole into a role
 * the accounts config names, for a principal of an account the role trusts.
 */
import { type Accounts, MAX_SESSION_SECONDS, MIN_SESSION_SECONDS } from './accounts.js';
import { AwsError } from './aws-error.js';
import { queryParams, queryResponse } from './query-protocol.js';
import type { CloudService } from './server.js';
import type { CloudRequest, CloudResponse } from './service.js';
import { roleId, type Sessions } from './sessions.js';
import { xmlElements } from './xml.js';

export const STS_XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const STS_VERSION = '2011-06-15';
/** Role chaining (assuming a role with a role's credentials) is capped at an hour, as in AWS. */
const CHAINED_MAX_SECONDS = 3600;

export interface StsDependencies {
  readonly accounts: Accounts;
  readonly sessions: Sessions;
  readonly now: () => number;
}

const ASSUMED_ROLE = /^arn:aws:sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/;

/** GetCallerIdentity's UserId: the account for its root, ROLEID:SESSION for a role session. */
export function callerUserId(principal: string, account: string): string {
  const m = ASSUMED_ROLE.exec(principal);
  return m === null ? account : `${roleId(m[1]!, m[2]!)}:${m[3]}`;
}

function validation(message: string): AwsError {
  return new AwsError(400, 'ValidationError', message);
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

async function assumeRole(
  deps: StsDependencies,
  request: CloudRequest,
  params: URLSearchParams,
): Promise<string> {
  const roleArn = params.get('RoleArn');
  const sessionName = params.get('RoleSessionName');
  if (roleArn === null)
    throw validation(
      "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null",
    );
  if (sessionName === null)
    throw validation(
      "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null",
    );
  if (!/^[\w+=,.@-]{2,64}$/.test(sessionName))
    throw validation(
      `1 validation error detected: Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`,
    );
  const durationText = params.get('DurationSeconds');
  const duration = durationText === null ? 3600 : Number(durationText);
  if (
    !Number.isInteger(duration) ||
    duration < MIN_SESSION_SECONDS ||
    duration > MAX_SESSION_SECONDS
  )
    throw validation(
      `1 validation error detected: Value '${durationText}' at 'durationSeconds' failed to satisfy constraint: Member must have value between ${MIN_SESSION_SECONDS} and ${MAX_SESSION_SECONDS}`,
    );
  const m = /^arn:aws:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/.exec(roleArn);
  if (m === null) throw validation(`${roleArn} is invalid`);
  const target = m[1]!;
  const roleName = m[2]!;
  const role = deps.accounts.role(target, roleName);
  if (role === undefined || !role.trust.includes(request.account))
    throw new AwsError(
      403,
      'AccessDenied',
      `User: ${request.principal} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
    );
  const chained = ASSUMED_ROLE.test(request.principal);
  if (chained && duration > CHAINED_MAX_SECONDS)
    throw validation(
      'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
    );
  if (duration > role.maxSessionSeconds)
    throw validation(
      'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
    );
  const session = await deps.sessions.create(target, roleName, sessionName, duration, deps.now());
  return xmlElements({
    AssumedRoleUser: {
      AssumedRoleId: session.userId,
      Arn: session.principal,
    },
    Credentials: {
      AccessKeyId: session.accessKeyId,
      SecretAccessKey: session.secretAccessKey,
      SessionToken: session.sessionToken,
      Expiration: isoSeconds(session.expiration),
    },
  });
}

export function stsService(deps: StsDependencies): CloudService {
  const actions: Record<string, (r: CloudRequest, p: URLSearchParams) => Promise<string>> = {
    GetCallerIdentity: async (r) =>
      xmlElements({
        UserId: callerUserId(r.principal, r.account),
        Account: r.account,
        Arn: r.principal,
      }),
    AssumeRole: (r, p) => assumeRole(deps, r, p),
  };
  return {
    name: 'sts',
    protocol: 'query',
    maxBodyBytes: 256 * 1024,
    handler: async (request): Promise<CloudResponse> => {
      const params = queryParams(request);
      const action = params.get('Action');
      const run = action === null ? undefined : actions[action];
      if (run === undefined || !Object.hasOwn(actions, action ?? ''))
        throw new AwsError(
          400,
          'InvalidAction',
          `Could not find operation ${action ?? '(none)'} for version ${params.get('Version') ?? STS_VERSION}`,
        );
      return queryResponse(action!, STS_XMLNS, await run(request, params), request.requestId);
    },
  };
}
