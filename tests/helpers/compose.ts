import * as path from 'node:path';
import { PROJECT_ROOT } from '../../worker/config';

export const COMPOSE_FILE = path.join(PROJECT_ROOT, 'docker-compose.yml');

/**
 * What an operator sets before `docker compose up`, neither with a default: the
 * PostgreSQL password (N19) and the folder of the cluster's certificates (issue 24).
 */
export const OPERATOR_ENV = { POSTGRES_PASSWORD: 'operator-set-password', HV_TLS_DIR: '/srv/hv-tls' };
export const PASSWORD_MESSAGE = /required variable POSTGRES_PASSWORD is missing a value: set POSTGRES_PASSWORD/;
export const TLS_MESSAGE = /required variable HV_TLS_DIR is missing a value: set HV_TLS_DIR/;
