/**
 * The AWS query protocol (STS, IAM, EC2): parameters from the form body and
 * the URL, list and filter parameters, and the response envelopes.
 */
import { AwsError } from './aws-error.js';
import type { CloudRequest, CloudResponse } from './service.js';
import { XML_DECLARATION, xmlEscape } from './xml.js';

/** The action's parameters: the URL query (less SigV4's own) and a form body. */
export function queryParams(request: CloudRequest): URLSearchParams {
  const params = new URLSearchParams();
  for (const [k, v] of request.query) if (!k.startsWith('X-Amz-')) params.append(k, v);
  const type = String(request.headers['content-type'] ?? '');
  if (
    request.body.length > 0 &&
    (type === '' || type.startsWith('application/x-www-form-urlencoded'))
  ) {
    for (const [k, v] of new URLSearchParams(request.body.toString('utf8'))) params.append(k, v);
  }
  return params;
}

/** Values of a list parameter: PREFIX.1, PREFIX.2, … in index order. */
export function queryList(params: URLSearchParams, prefix: string): string[] {
  const found: Array<[number, string]> = [];
  const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)$`);
  for (const [k, v] of params) {
    const m = re.exec(k);
    if (m !== null) found.push([Number(m[1]), v]);
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

export interface QueryFilter {
  readonly name: string;
  readonly values: readonly string[];
}

/** EC2 filters: Filter.N.Name with Filter.N.Value.M. */
export function queryFilters(params: URLSearchParams): QueryFilter[] {
  const indexes = new Set<number>();
  for (const k of params.keys()) {
    const m = /^Filter\.(\d+)\./.exec(k);
    if (m !== null) indexes.add(Number(m[1]));
  }
  return [...indexes]
    .sort((a, b) => a - b)
    .map((i) => {
      const name = params.get(`Filter.${i}.Name`);
      if (name === null)
        throw new AwsError(400, 'InvalidParameterValue', `Filter.${i}.Name is missing`);
      return { name, values: queryList(params, `Filter.${i}.Value`) };
    });
}

/** Does `value` match one of an EC2 filter's values (* and ? are wildcards)? */
export function filterMatches(values: readonly string[], value: string): boolean {
  return values.some((pattern) => {
    const re = new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
      's',
    );
    return re.test(value);
  });
}

/** A boolean query parameter (absent: `fallback`). */
export function queryBoolean(params: URLSearchParams, name: string, fallback = false): boolean {
  const v = params.get(name);
  if (v === null) return fallback;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new AwsError(
    400,
    'InvalidParameterValue',
    `Value (${v}) for parameter ${name} is invalid. Expected: 'true' or 'false'.`,
  );
}

/** An STS/IAM-style success: <ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>. */
export function queryResponse(
  action: string,
  xmlns: string,
  result: string,
  requestId: string,
): CloudResponse {
  return {
    status: 200,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
    body: Buffer.from(
      `${XML_DECLARATION}<${action}Response xmlns="${xmlns}"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>${xmlEscape(requestId)}</RequestId></ResponseMetadata></${action}Response>`,
    ),
  };
}

export const EC2_XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** An EC2-style success: <ActionResponse><requestId/>…</ActionResponse>. */
export function ec2Response(action: string, inner: string, requestId: string): CloudResponse {
  return {
    status: 200,
    headers: { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId },
    body: Buffer.from(
      `${XML_DECLARATION}<${action}Response xmlns="${EC2_XMLNS}"><requestId>${xmlEscape(requestId)}</requestId>${inner}</${action}Response>`,
    ),
  };
}
