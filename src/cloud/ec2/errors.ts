/**
 * The EC2 error codes the snapshot, image and tag actions answer with, in
 * AWS's words where they are known (EC2 answers client errors with 400).
 */
import { AwsError } from '../aws-error.js';

export function ec2Error(code: string, message: string, status = 400): AwsError {
  return new AwsError(status, code, message);
}

export function invalidValue(message: string): AwsError {
  return ec2Error('InvalidParameterValue', message);
}

export function invalidCombination(message: string): AwsError {
  return ec2Error('InvalidParameterCombination', message);
}

export function missing(parameter: string): AwsError {
  return ec2Error('MissingParameter', `The request must contain the parameter ${parameter}`);
}

export function amiMalformed(id: string): AwsError {
  return ec2Error('InvalidAMIID.Malformed', `Invalid id: "${id}" (expecting "ami-...")`);
}

/** AWS prints the id inside brackets (a list of one), a quirk kept for clients that parse it. */
export function amiNotFound(id: string): AwsError {
  return ec2Error('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
}

export function amiUnavailable(id: string, state: string): AwsError {
  return ec2Error('InvalidAMIID.Unavailable', `The image id '[${id}]' is ${state}, not available`);
}

export function snapshotMalformed(id: string): AwsError {
  return ec2Error('InvalidSnapshotID.Malformed', `Invalid id: "${id}" (expecting "snap-...")`);
}

export function snapshotNotFound(id: string): AwsError {
  return ec2Error('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
}

export function snapshotInUse(id: string, user: string): AwsError {
  return ec2Error('InvalidSnapshot.InUse', `The snapshot ${id} is currently in use by ${user}`);
}

export function userMalformed(id: string): AwsError {
  return ec2Error('InvalidUserID.Malformed', `Invalid user id: "${id}"`);
}

export function badNextToken(token: string): AwsError {
  return ec2Error('InvalidNextToken', `The token '${token.slice(0, 64)}' is invalid`);
}

export function badFilter(name: string): AwsError {
  return invalidValue(`The filter '${name.slice(0, 128)}' is invalid`);
}
