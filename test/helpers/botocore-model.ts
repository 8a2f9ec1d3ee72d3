/**
 * The official AWS service models, as botocore ships them
 * (botocore/data/SERVICE/VERSION/service-2.json[.gz]): Debian's
 * python3-botocore first, then $FERRY_BOTOCORE_DIR, then whatever botocore
 * python3 imports.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface ModelMember {
  readonly shape: string;
  readonly location?: 'header' | 'headers' | 'uri' | 'querystring' | 'statusCode';
  readonly locationName?: string;
  readonly queryName?: string;
  readonly flattened?: boolean;
  readonly xmlNamespace?: unknown;
  readonly xmlAttribute?: boolean;
}

export interface ModelShape {
  readonly type: string;
  readonly members?: Readonly<Record<string, ModelMember>>;
  readonly member?: ModelMember;
  readonly key?: ModelMember;
  readonly value?: ModelMember;
  readonly required?: readonly string[];
  readonly enum?: readonly string[];
  readonly flattened?: boolean;
  readonly locationName?: string;
  readonly payload?: string;
  readonly exception?: boolean;
  /** A server-side error (5xx) rather than the caller's. */
  readonly fault?: boolean;
  readonly error?: { readonly code?: string; readonly httpStatusCode?: number };
  readonly timestampFormat?: string;
}

export interface ModelOperation {
  readonly name: string;
  readonly http: {
    readonly method: string;
    readonly requestUri: string;
    readonly responseCode?: number;
  };
  readonly input?: { readonly shape: string };
  readonly output?: { readonly shape: string; readonly resultWrapper?: string };
  readonly errors?: ReadonlyArray<{ readonly shape: string }>;
}

export interface ServiceModel {
  readonly metadata: {
    readonly protocol: string;
    readonly apiVersion: string;
    readonly targetPrefix?: string;
    readonly endpointPrefix: string;
  };
  readonly operations: Readonly<Record<string, ModelOperation>>;
  readonly shapes: Readonly<Record<string, ModelShape>>;
}

function modelDirs(): string[] {
  const dirs = ['/usr/lib/python3/dist-packages'];
  if (process.env.FERRY_BOTOCORE_DIR) dirs.push(process.env.FERRY_BOTOCORE_DIR);
  try {
    const out = execFileSync(
      'python3',
      ['-c', 'import botocore, os; print(os.path.dirname(os.path.dirname(botocore.__file__)))'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    dirs.push(out.trim());
  } catch {
    // no python3 with botocore
  }
  return dirs.filter((d) => d !== '');
}

/** The model of `service` at `version`, or null when no botocore is installed. */
export function loadModel(service: string, version: string): ServiceModel | null {
  const rel = join('botocore', 'data', service, version, 'service-2.json');
  for (const d of modelDirs()) {
    const p = join(d, rel);
    if (existsSync(p)) return JSON.parse(readFileSync(p, 'utf8')) as ServiceModel;
    if (existsSync(`${p}.gz`))
      return JSON.parse(gunzipSync(readFileSync(`${p}.gz`)).toString('utf8')) as ServiceModel;
  }
  return null;
}

export function shapeOf(model: ServiceModel, name: string): ModelShape {
  const s = model.shapes[name];
  if (s === undefined) throw new Error(`the model has no shape ${name}`);
  return s;
}
