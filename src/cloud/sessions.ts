/**
 * Temporary credentials handed out by STS AssumeRole. They belong to the
 * account of the role, are kept in that account's global STS document (so
 * they survive a restart) and are accepted until they expire.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GLOBAL_REGION, type StateStore } from './state-store.js';

export interface Session {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly account: string;
  readonly roleName: string;
  readonly sessionName: string;
  /** arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION */
  readonly principal: string;
  /** ROLEID:SESSION, as GetCallerIdentity's UserId. */
  readonly userId: string;
  /** Epoch milliseconds. */
  readonly expiration: number;
}

interface StsDoc {
  sessions: Session[];
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function randomId(prefix: string, length: number): string {
  const bytes = randomBytes(length);
  let out = prefix;
  for (const b of bytes) out += ALNUM[b % 32];
  return out;
}

/** The stable unique id of a role (AROA…), as IAM gives each role one. */
export function roleId(account: string, roleName: string): string {
  const digest = createHash('sha256').update(`${account}:${roleName}`).digest();
  let out = 'AROA';
  for (let i = 0; i < 17; i++) out += ALNUM[digest[i]! % 32];
  return out;
}

export class Sessions {
  private readonly state: StateStore;
  private readonly byKey = new Map<string, Session>();

  private constructor(state: StateStore) {
    this.state = state;
  }

  static async open(state: StateStore, accounts: readonly string[]): Promise<Sessions> {
    const s = new Sessions(state);
    for (const account of accounts) {
      const doc = await state.read<StsDoc>(account, GLOBAL_REGION, 'sts', () => ({ sessions: [] }));
      for (const session of doc.sessions) s.byKey.set(session.accessKeyId, session);
    }
    return s;
  }

  lookup(accessKeyId: string): Session | undefined {
    return this.byKey.get(accessKeyId);
  }

  async create(
    account: string,
    roleName: string,
    sessionName: string,
    durationSeconds: number,
    now: number,
  ): Promise<Session> {
    const session: Session = {
      accessKeyId: randomId('ASIA', 16),
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: `FQoGZXIvYXdzE${randomBytes(96).toString('base64')}`,
      account,
      roleName,
      sessionName,
      principal: `arn:aws:sts::${account}:assumed-role/${roleName}/${sessionName}`,
      userId: `${roleId(account, roleName)}:${sessionName}`,
      expiration: Math.floor(now / 1000) * 1000 + durationSeconds * 1000,
    };
    const expired = await this.state.update<StsDoc, string[]>(
      account,
      GLOBAL_REGION,
      'sts',
      () => ({ sessions: [] }),
      (doc) => {
        const gone = doc.sessions.filter((x) => x.expiration <= now).map((x) => x.accessKeyId);
        doc.sessions = doc.sessions.filter((x) => x.expiration > now);
        doc.sessions.push(session);
        return gone;
      },
    );
    for (const k of expired) this.byKey.delete(k);
    this.byKey.set(session.accessKeyId, session);
    return session;
  }
}
