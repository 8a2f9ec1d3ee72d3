/**
 * Checks recorded exchanges against a botocore service model: which
 * operation a request is, that its parameters are members of the input
 * shape (with the required ones present), that a success response carries
 * only members of the output shape, serialized as the protocol says (XML
 * element names and list wrappers, JSON keys, REST headers and status
 * codes), each scalar well-formed for its type and enum, and that an error
 * response has the protocol's error envelope, with the modeled status for a
 * modeled code. Protocols: ec2, query (STS), json (KMS), rest-json (EBS),
 * rest-xml (S3).
 */

import { type ModelMember, type ModelShape, type ServiceModel, shapeOf } from './botocore-model.js';
import { parseXml, type XmlNode } from './mini-xml.js';
import type { Exchange } from './recording-proxy.js';

export interface Checked {
  /** The operation the request was, or undefined when none matched. */
  readonly operation: string | undefined;
  readonly status: number;
  /** The error code of an error response. */
  readonly errorCode?: string;
  readonly problems: string[];
}

const ISO8601 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$/;
const INTEGER = /^-?\d+$/;
const NUMBER = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Error codes any operation of a service may answer (auth, throttling, validation). */
const COMMON_ERRORS = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'AuthFailure',
  'ExpiredToken',
  'IncompleteSignature',
  'InternalFailure',
  'InternalError',
  'InvalidAction',
  'InvalidClientTokenId',
  'InvalidParameterCombination',
  'InvalidParameterValue',
  'InvalidQueryParameter',
  'MissingAction',
  'MissingAuthenticationToken',
  'MissingParameter',
  'OptInRequired',
  'RequestExpired',
  'ServiceUnavailable',
  'SignatureDoesNotMatch',
  'ThrottlingException',
  'Throttling',
  'UnknownOperationException',
  'UnrecognizedClientException',
  'ValidationError',
  'ValidationException',
  'SerializationException',
  // S3's documented error codes that its model does not list per operation.
  'BadDigest',
  'BucketAlreadyExists',
  'BucketAlreadyOwnedByYou',
  'BucketNotEmpty',
  'EntityTooLarge',
  'EntityTooSmall',
  'IllegalLocationConstraintException',
  'InvalidAccessKeyId',
  'InvalidArgument',
  'InvalidBucketName',
  'InvalidDigest',
  'InvalidPart',
  'InvalidPartOrder',
  'InvalidRange',
  'InvalidToken',
  'InvalidURI',
  'KeyTooLongError',
  'MalformedXML',
  'MetadataTooLarge',
  'MethodNotAllowed',
  'MissingContentLength',
  'NoSuchBucket',
  'NoSuchKey',
  'NoSuchUpload',
  'NotImplemented',
  'PreconditionFailed',
  'RequestTimeTooSkewed',
  'XAmzContentSHA256Mismatch',
  'AuthorizationHeaderMalformed',
  'PermanentRedirect',
  'InvalidLocationConstraint',
  'InvalidChunkSizeError',
  'IncompleteBody',
  // EC2's client errors are listed in its API reference, not in the model.
  'InvalidConversionTaskId',
  'InvalidConversionTaskId.Malformed',
  'IncorrectInstanceState',
  'InvalidInstanceID.Malformed',
  'InvalidInstanceID.NotFound',
  'InvalidConversionTaskId.Malformed',
  'DryRunOperation',
  'IdempotentParameterMismatch',
  'IncorrectState',
  'InvalidAMIAttributeItemValue',
  'InvalidAMIID.Malformed',
  'InvalidAMIID.NotFound',
  'InvalidAMIID.Unavailable',
  'InvalidAMIName.Duplicate',
  'InvalidAMIName.Malformed',
  'InvalidBlockDeviceMapping',
  'InvalidID',
  'InvalidManifest',
  'InvalidNextToken',
  'InvalidParameter',
  'InvalidParameterDependency',
  'InvalidRequest',
  'InvalidSnapshot.InUse',
  'InvalidSnapshot.NotFound',
  'InvalidSnapshotID.Malformed',
  'InvalidUserID.Malformed',
  'OperationNotPermitted',
  'ResourceLimitExceeded',
  'TagLimitExceeded',
]);

function header(h: Exchange['requestHeaders'], name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : v;
}

function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// ---- scalars ------------------------------------------------------------

function checkScalar(
  shape: ModelShape,
  value: string,
  where: string,
  problems: string[],
  timestampDefault: 'iso8601' | 'unixTimestamp' | 'rfc822',
): void {
  const t = shape.type;
  if (t === 'integer' || t === 'long') {
    if (!INTEGER.test(value)) problems.push(`${where}: "${value}" is not an ${t}`);
  } else if (t === 'double' || t === 'float') {
    if (!NUMBER.test(value)) problems.push(`${where}: "${value}" is not a number`);
  } else if (t === 'boolean') {
    if (value !== 'true' && value !== 'false')
      problems.push(`${where}: "${value}" is not a boolean`);
  } else if (t === 'timestamp') {
    const format = shape.timestampFormat ?? timestampDefault;
    const ok =
      format === 'iso8601'
        ? ISO8601.test(value)
        : format === 'unixTimestamp'
          ? NUMBER.test(value)
          : !Number.isNaN(Date.parse(value));
    if (!ok) problems.push(`${where}: "${value}" is not a ${format} timestamp`);
  } else if (t === 'blob') {
    if (!BASE64.test(value.replace(/\s/g, ''))) problems.push(`${where}: not base64`);
  } else if (t === 'string') {
    if (shape.enum !== undefined && !shape.enum.includes(value))
      problems.push(`${where}: "${value}" is not one of ${shape.enum.join('|')}`);
  }
}

// ---- query and ec2 requests -------------------------------------------------

function queryMemberName(name: string, m: ModelMember, ec2: boolean): string {
  if (ec2)
    return (
      m.queryName ?? (m.locationName !== undefined ? upperFirst(m.locationName) : upperFirst(name))
    );
  return m.locationName ?? name;
}

/** Walks `path` (a parameter name split on dots) through `shape`; reports what does not fit. */
function checkQueryParam(
  model: ServiceModel,
  shape: ModelShape,
  path: string[],
  value: string,
  where: string,
  problems: string[],
  ec2: boolean,
): void {
  if (shape.type === 'structure') {
    const [head, ...rest] = path;
    const entry = Object.entries(shape.members ?? {}).find(
      ([n, m]) => queryMemberName(n, m, ec2) === head,
    );
    if (entry === undefined) {
      problems.push(`${where}: ${head} is not a member`);
      return;
    }
    checkQueryParam(
      model,
      shapeOf(model, entry[1].shape),
      rest,
      value,
      `${where}.${head}`,
      problems,
      ec2,
    );
    return;
  }
  if (shape.type === 'list') {
    let rest = path;
    const member = shape.member;
    if (member === undefined) return;
    if (!ec2 && shape.flattened !== true) {
      if (rest[0] !== (member.locationName ?? 'member')) {
        problems.push(
          `${where}: expected .${member.locationName ?? 'member'}.N, got .${rest.join('.')}`,
        );
        return;
      }
      rest = rest.slice(1);
    }
    const [index, ...tail] = rest;
    if (index === undefined || !/^[1-9]\d*$/.test(index)) {
      problems.push(`${where}: list index "${index ?? ''}" is not 1, 2, ...`);
      return;
    }
    checkQueryParam(
      model,
      shapeOf(model, member.shape),
      tail,
      value,
      `${where}.${index}`,
      problems,
      ec2,
    );
    return;
  }
  if (shape.type === 'map') {
    const [entry, index, part, ...tail] = path;
    if (entry !== 'entry' || index === undefined || !/^[1-9]\d*$/.test(index) || tail.length > 0) {
      problems.push(`${where}: expected .entry.N.key|value`);
      return;
    }
    const m = part === 'key' ? shape.key : part === 'value' ? shape.value : undefined;
    if (m === undefined) problems.push(`${where}: expected key or value, got ${part ?? ''}`);
    else checkScalar(shapeOf(model, m.shape), value, where, problems, 'iso8601');
    return;
  }
  if (path.length > 0) {
    problems.push(`${where}: a ${shape.type} has no member ${path.join('.')}`);
    return;
  }
  checkScalar(shape, value, where, problems, 'iso8601');
}

function checkQueryRequest(
  model: ServiceModel,
  op: string,
  params: URLSearchParams,
  problems: string[],
  ec2: boolean,
): void {
  const operation = model.operations[op];
  const input = operation?.input === undefined ? undefined : shapeOf(model, operation.input.shape);
  for (const [k, v] of params) {
    if (k === 'Action' || k === 'Version') continue;
    if (input === undefined) {
      problems.push(`request: ${op} takes no parameter ${k}`);
      continue;
    }
    checkQueryParam(model, input, k.split('.'), v, 'request', problems, ec2);
  }
  for (const r of input?.required ?? []) {
    const m = input?.members?.[r];
    if (m === undefined) continue;
    const name = queryMemberName(r, m, ec2);
    if (![...params.keys()].some((k) => k === name || k.startsWith(`${name}.`)))
      problems.push(`request: required ${r} missing`);
  }
}

// ---- XML responses ---------------------------------------------------------

function xmlMemberName(name: string, m: ModelMember): string {
  return m.locationName ?? name;
}

/** Checks the children of `node` against structure `shape`. */
function checkXmlStructure(
  model: ServiceModel,
  shape: ModelShape,
  node: XmlNode,
  where: string,
  problems: string[],
  ec2: boolean,
): void {
  const members = Object.entries(shape.members ?? {}).filter(
    ([, m]) => m.location === undefined && m.xmlAttribute !== true,
  );
  for (const child of node.children) {
    const entry = members.find(([n, m]) => {
      const s = shapeOf(model, m.shape);
      // A flattened list repeats its member element in place of a wrapper.
      if (s.type === 'list' && (m.flattened === true || s.flattened === true))
        return (m.locationName ?? s.member?.locationName ?? n) === child.name;
      return xmlMemberName(n, m) === child.name;
    });
    if (entry === undefined) {
      problems.push(`${where}: <${child.name}> is not a member`);
      continue;
    }
    const [name, m] = entry;
    const s = shapeOf(model, m.shape);
    if (s.type === 'list' && (m.flattened === true || s.flattened === true)) {
      if (s.member !== undefined)
        checkXmlValue(
          model,
          shapeOf(model, s.member.shape),
          child,
          `${where}.${name}[]`,
          problems,
          ec2,
        );
    } else checkXmlValue(model, s, child, `${where}.${name}`, problems, ec2);
  }
}

function checkXmlValue(
  model: ServiceModel,
  shape: ModelShape,
  node: XmlNode,
  where: string,
  problems: string[],
  ec2: boolean,
): void {
  if (shape.type === 'structure') {
    checkXmlStructure(model, shape, node, where, problems, ec2);
    return;
  }
  if (shape.type === 'list') {
    const member = shape.member;
    if (member === undefined) return;
    const itemName = member.locationName ?? 'member';
    for (const child of node.children) {
      if (child.name !== itemName)
        problems.push(`${where}: list item <${child.name}>, expected <${itemName}>`);
      else checkXmlValue(model, shapeOf(model, member.shape), child, `${where}[]`, problems, ec2);
    }
    return;
  }
  if (shape.type === 'map') {
    for (const entry of node.children) {
      if (entry.name !== 'entry')
        problems.push(`${where}: map item <${entry.name}>, expected <entry>`);
    }
    return;
  }
  if (node.children.length > 0) {
    problems.push(`${where}: a ${shape.type} has child elements`);
    return;
  }
  checkScalar(shape, node.text, where, problems, 'iso8601');
}

function checkXmlOutput(
  model: ServiceModel,
  op: string,
  body: Buffer,
  problems: string[],
  protocol: string,
): void {
  const operation = model.operations[op];
  let root: XmlNode;
  try {
    root = parseXml(body.toString('utf8'));
  } catch (error) {
    problems.push(`response: not XML (${(error as Error).message})`);
    return;
  }
  const output =
    operation?.output === undefined ? undefined : shapeOf(model, operation.output.shape);
  if (protocol === 'ec2') {
    if (root.name !== `${op}Response`)
      problems.push(`response: root <${root.name}>, expected <${op}Response>`);
    const rest = root.children.filter((c) => c.name !== 'requestId');
    if (!root.children.some((c) => c.name === 'requestId'))
      problems.push('response: no <requestId>');
    if (output !== undefined)
      checkXmlStructure(model, output, { ...root, children: rest }, 'response', problems, true);
    else if (rest.length > 0)
      problems.push(`response: ${op} has no output, got <${rest[0]?.name}>`);
    return;
  }
  if (protocol === 'query') {
    if (root.name !== `${op}Response`)
      problems.push(`response: root <${root.name}>, expected <${op}Response>`);
    for (const c of root.children) {
      if (c.name === 'ResponseMetadata') continue;
      if (c.name !== operation?.output?.resultWrapper) {
        problems.push(
          `response: <${c.name}> is not <${operation?.output?.resultWrapper ?? '(no result)'}>`,
        );
        continue;
      }
      if (output !== undefined) checkXmlStructure(model, output, c, 'response', problems, false);
    }
    if (!root.children.some((c) => c.name === 'ResponseMetadata'))
      problems.push('response: no <ResponseMetadata>');
    return;
  }
  // rest-xml: the payload member, or the output's body members under the root.
  if (output === undefined) return;
  if (output.payload !== undefined) {
    const m = output.members?.[output.payload];
    const s = m === undefined ? undefined : shapeOf(model, m.shape);
    if (s?.type === 'structure') checkXmlStructure(model, s, root, 'response', problems, false);
    return;
  }
  checkXmlStructure(model, output, root, 'response', problems, false);
}

// ---- JSON ----------------------------------------------------------------

function checkJsonValue(
  model: ServiceModel,
  shape: ModelShape,
  value: unknown,
  where: string,
  problems: string[],
): void {
  switch (shape.type) {
    case 'structure': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        problems.push(`${where}: not an object`);
        return;
      }
      const members = shape.members ?? {};
      for (const [k, v] of Object.entries(value)) {
        const m = Object.entries(members).find(([n, mm]) => (mm.locationName ?? n) === k);
        if (m === undefined || m[1].location !== undefined)
          problems.push(`${where}: ${k} is not a body member`);
        else checkJsonValue(model, shapeOf(model, m[1].shape), v, `${where}.${k}`, problems);
      }
      return;
    }
    case 'list':
      if (!Array.isArray(value)) problems.push(`${where}: not a list`);
      else if (shape.member !== undefined)
        for (const v of value)
          checkJsonValue(model, shapeOf(model, shape.member.shape), v, `${where}[]`, problems);
      return;
    case 'map':
      if (typeof value !== 'object' || value === null) problems.push(`${where}: not a map`);
      else if (shape.value !== undefined)
        for (const v of Object.values(value))
          checkJsonValue(model, shapeOf(model, shape.value.shape), v, `${where}{}`, problems);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') problems.push(`${where}: not a boolean`);
      return;
    case 'integer':
    case 'long':
      if (!Number.isInteger(value)) problems.push(`${where}: not an integer`);
      return;
    case 'double':
    case 'float':
      if (typeof value !== 'number') problems.push(`${where}: not a number`);
      return;
    case 'timestamp':
      if (typeof value === 'number') return;
      if (typeof value === 'string' && shape.timestampFormat === 'iso8601' && ISO8601.test(value))
        return;
      problems.push(`${where}: ${JSON.stringify(value)} is not a timestamp`);
      return;
    default:
      if (typeof value !== 'string') problems.push(`${where}: not a string`);
      else checkScalar(shape, value, where, problems, 'unixTimestamp');
  }
}

function checkRequired(
  shape: ModelShape | undefined,
  doc: Record<string, unknown>,
  problems: string[],
): void {
  for (const r of shape?.required ?? []) {
    const m = shape?.members?.[r];
    if (m === undefined || m.location !== undefined) continue;
    if (!(r in doc)) problems.push(`request: required ${r} missing`);
  }
}

// ---- operations ------------------------------------------------------------

/** Does a REST request match an operation's URI template (and its literal query keys)? */
function matchRest(
  template: string,
  method: string,
  opMethod: string,
  path: string,
  query: URLSearchParams,
): number {
  if (method !== opMethod) return -1;
  const [tPath = '', tQuery] = template.split('?');
  const tSegs = tPath.split('/').filter((s) => s !== '');
  const segs = path.split('/').filter((s) => s !== '');
  let score = 0;
  let i = 0;
  for (const t of tSegs) {
    if (/^\{.+\+\}$/.test(t)) {
      if (i >= segs.length) return -1;
      i = segs.length;
      continue;
    }
    const s = segs[i++];
    if (s === undefined) return -1;
    if (/^\{.+\}$/.test(t)) continue;
    if (t !== s) return -1;
    score += 10;
  }
  if (i !== segs.length) return -1;
  for (const q of (tQuery ?? '').split('&').filter((x) => x !== '')) {
    const [k = '', v] = q.split('=');
    if (!query.has(k)) return -1;
    if (v !== undefined && query.get(k) !== v) return -1;
    score += 5;
  }
  return score;
}

function formParams(ex: Exchange): URLSearchParams {
  const url = new URL(ex.url, 'http://x');
  const params = new URLSearchParams(url.search);
  const type = header(ex.requestHeaders, 'content-type') ?? '';
  if (type.startsWith('application/x-www-form-urlencoded'))
    for (const [k, v] of new URLSearchParams(ex.requestBody.toString('utf8'))) params.append(k, v);
  return params;
}

function identify(model: ServiceModel, ex: Exchange): string | undefined {
  const protocol = model.metadata.protocol;
  if (protocol === 'ec2' || protocol === 'query') {
    const action = formParams(ex).get('Action');
    return action !== null && Object.hasOwn(model.operations, action) ? action : undefined;
  }
  if (protocol === 'json') {
    const target = header(ex.requestHeaders, 'x-amz-target') ?? '';
    const prefix = `${model.metadata.targetPrefix}.`;
    const op = target.startsWith(prefix) ? target.slice(prefix.length) : '';
    return Object.hasOwn(model.operations, op) ? op : undefined;
  }
  const url = new URL(ex.url, 'http://x');
  let best: string | undefined;
  let bestScore = -1;
  for (const [name, op] of Object.entries(model.operations)) {
    let score = matchRest(
      op.http.requestUri,
      ex.method,
      op.http.method,
      decodeURIComponent(url.pathname),
      url.searchParams,
    );
    if (score < 0) continue;
    // Operations that share a URI (PutObject and CopyObject, UploadPart and
    // UploadPartCopy, ...) differ in their required headers and query members.
    const input = op.input === undefined ? undefined : model.shapes[op.input.shape];
    for (const r of input?.required ?? []) {
      const m = input?.members?.[r];
      if (m?.location === 'header') {
        if (header(ex.requestHeaders, m.locationName ?? r) === undefined) score = -1;
        else score += 3;
      } else if (m?.location === 'querystring') {
        if (!url.searchParams.has(m.locationName ?? r)) score = -1;
        else score += 3;
      }
      if (score < 0) break;
    }
    if (score > bestScore) {
      best = name;
      bestScore = score;
    }
  }
  return best;
}

function errorShapeCodes(model: ServiceModel, op: string): Map<string, number | undefined> {
  const codes = new Map<string, number | undefined>();
  for (const e of model.operations[op]?.errors ?? []) {
    const s = model.shapes[e.shape];
    codes.set(s?.error?.code ?? e.shape, s?.error?.httpStatusCode);
  }
  return codes;
}

function checkErrorCode(
  model: ServiceModel,
  op: string | undefined,
  code: string,
  status: number,
  problems: string[],
): void {
  if (op === undefined) return;
  const modeled = errorShapeCodes(model, op);
  const anyShape = Object.entries(model.shapes).find(
    ([n, s]) => s.exception === true && (s.error?.code ?? n) === code,
  );
  if (!modeled.has(code) && anyShape === undefined && !COMMON_ERRORS.has(code))
    problems.push(`error: ${code} is neither an error of ${op} in the model nor a common error`);
  // JSON services model no statuses: their exceptions are 400, faults 500.
  const shape = anyShape?.[1];
  const jsonStatus =
    model.metadata.protocol === 'json' && shape !== undefined
      ? shape.fault
        ? 500
        : 400
      : undefined;
  const want = modeled.get(code) ?? shape?.error?.httpStatusCode ?? jsonStatus;
  if (want !== undefined && want !== status)
    problems.push(`error: ${code} answered ${status}, the model says ${want}`);
}

/** Checks one exchange against the model of its service. */
export function checkExchange(model: ServiceModel, ex: Exchange): Checked {
  const problems: string[] = [];
  const protocol = model.metadata.protocol;
  const op = identify(model, ex);
  const operation = op === undefined ? undefined : model.operations[op];
  const ok = ex.status >= 200 && ex.status < 300;
  let errorCode: string | undefined;
  if (op === undefined) problems.push(`request ${ex.method} ${ex.url}: no operation of the model`);

  // The request, as the client sent it.
  if (op !== undefined && (protocol === 'ec2' || protocol === 'query'))
    checkQueryRequest(model, op, formParams(ex), problems, protocol === 'ec2');
  if (
    op !== undefined &&
    (protocol === 'json' || protocol === 'rest-json') &&
    operation?.input !== undefined
  ) {
    const input = shapeOf(model, operation.input.shape);
    const text = ex.requestBody.toString('utf8');
    if (input.payload === undefined && text !== '') {
      try {
        const doc = JSON.parse(text) as Record<string, unknown>;
        checkJsonValue(model, input, doc, 'request', problems);
        checkRequired(input, doc, problems);
      } catch (error) {
        problems.push(`request: not JSON (${(error as Error).message})`);
      }
    }
  }

  // The response.
  if (!ok) {
    const body = ex.responseBody.toString('utf8');
    if (protocol === 'json' || protocol === 'rest-json') {
      const typeHeader = header(ex.responseHeaders, 'x-amzn-errortype');
      try {
        const doc = JSON.parse(body) as Record<string, unknown>;
        const raw =
          typeHeader ??
          (doc.__type as string | undefined) ??
          (doc.code as string | undefined) ??
          '';
        errorCode = raw.split(':')[0]?.split('#').at(-1) ?? '';
        if (errorCode === '') problems.push('error: no __type or x-amzn-errortype');
        if (typeof doc.message !== 'string' && typeof doc.Message !== 'string')
          problems.push('error: no message');
      } catch {
        problems.push('error: body is not JSON');
      }
    } else if (ex.method !== 'HEAD') {
      try {
        const root = parseXml(body);
        const find = (n: XmlNode, name: string): XmlNode | undefined =>
          n.children.find((c) => c.name === name);
        if (protocol === 'ec2') {
          const error =
            root.name === 'Response' ? find(find(root, 'Errors') ?? root, 'Error') : undefined;
          if (error === undefined || find(root, 'RequestID') === undefined)
            problems.push('error: not <Response><Errors><Error>…</Errors><RequestID>');
          errorCode = error === undefined ? undefined : find(error, 'Code')?.text;
          if (error !== undefined && find(error, 'Message') === undefined)
            problems.push('error: no <Message>');
        } else if (protocol === 'query') {
          const error = root.name === 'ErrorResponse' ? find(root, 'Error') : undefined;
          if (error === undefined || find(root, 'RequestId') === undefined)
            problems.push('error: not <ErrorResponse><Error>…</Error><RequestId>');
          errorCode = error === undefined ? undefined : find(error, 'Code')?.text;
          const type = error === undefined ? undefined : find(error, 'Type')?.text;
          if (type !== 'Sender' && type !== 'Receiver')
            problems.push('error: <Type> is not Sender or Receiver');
        } else {
          if (root.name !== 'Error') problems.push(`error: root <${root.name}>, expected <Error>`);
          errorCode = find(root, 'Code')?.text;
          if (find(root, 'Message') === undefined) problems.push('error: no <Message>');
        }
        if (errorCode === undefined || errorCode === '') problems.push('error: no <Code>');
      } catch (error) {
        problems.push(`error: not XML (${(error as Error).message})`);
      }
    }
    if (errorCode !== undefined && errorCode !== '')
      checkErrorCode(model, op, errorCode, ex.status, problems);
    return {
      operation: op,
      status: ex.status,
      ...(errorCode === undefined ? {} : { errorCode }),
      problems,
    };
  }

  if (op === undefined || operation === undefined)
    return { operation: op, status: ex.status, problems };
  if (protocol === 'rest-json' || protocol === 'rest-xml') {
    const want = operation.http.responseCode ?? 200;
    // A ranged read answers 206 Partial Content, which the models leave out.
    const ranged = ex.status === 206 && header(ex.requestHeaders, 'range') !== undefined;
    if (ex.status !== want && !ranged)
      problems.push(`response: status ${ex.status}, the model says ${want}`);
  }
  const output =
    operation.output === undefined ? undefined : shapeOf(model, operation.output.shape);
  if (protocol === 'rest-json' || protocol === 'rest-xml') {
    const headers = new Map<string, ModelMember>();
    for (const m of Object.values(output?.members ?? {}))
      if (m.location === 'header' && m.locationName !== undefined)
        headers.set(m.locationName.toLowerCase(), m);
    const prefixed = Object.values(output?.members ?? {}).filter((m) => m.location === 'headers');
    for (const [h, v] of Object.entries(ex.responseHeaders)) {
      const name = h.toLowerCase();
      if (!name.startsWith('x-amz-') || name === 'x-amz-request-id' || name === 'x-amz-id-2')
        continue;
      const m = headers.get(name);
      if (m === undefined) {
        if (!prefixed.some((p) => name.startsWith((p.locationName ?? '').toLowerCase())))
          problems.push(`response: header ${h} is not in the model`);
        continue;
      }
      checkScalar(shapeOf(model, m.shape), String(v), `response header ${h}`, problems, 'rfc822');
    }
  }
  const streamingPayload =
    output?.payload !== undefined &&
    ['blob', 'string'].includes(shapeOf(model, output.members?.[output.payload]?.shape ?? '').type);
  if (ex.method === 'HEAD' || streamingPayload)
    return { operation: op, status: ex.status, problems };
  if (protocol === 'ec2' || protocol === 'query' || protocol === 'rest-xml') {
    if (ex.responseBody.length > 0 || protocol !== 'rest-xml')
      checkXmlOutput(model, op, ex.responseBody, problems, protocol);
  } else if (output !== undefined && ex.responseBody.length > 0) {
    try {
      checkJsonValue(
        model,
        output,
        JSON.parse(ex.responseBody.toString('utf8')),
        'response',
        problems,
      );
    } catch (error) {
      problems.push(`response: not JSON (${(error as Error).message})`);
    }
  }
  return { operation: op, status: ex.status, problems };
}
