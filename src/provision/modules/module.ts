// The module contract (pyinfra's model): gather facts read-only, then a PURE plan compares them
// with the desired state and yields changes plus the exact steps apply would run. No step = no
// change. `plan` and `apply` share this one path, so a plan cannot lie about what apply does.
import type { Host } from '../inventory.ts';
import type { ExecOptions, ExecResult } from '../transport/transport.ts';
import type { HostFacts } from '../facts.ts';

export type Action = '+' | '~' | '-' | '-/+' | 'run';

export interface Change {
  action: Action;
  /** "file /etc/x", "systemd unit foo@ns.service", "ufw rule allow 3478/udp" */
  resource: string;
  detail?: string;
  diff?: string;
  /** Attributes the task manages that already match (the plan shows their count, not them). */
  unchanged?: number;
}

export interface Step {
  script: string;
  stdin?: string | Buffer;
  /** What an operator reads in the plan; defaults to the script. */
  display?: string;
  /** Exit codes other than 0 that mean success (e.g. ufw delete of a missing rule). */
  okCodes?: number[];
  /** The step only looks (wait_for): running it does not make the host's facts stale. */
  readOnly?: boolean;
}

export interface Planned {
  changes: Change[];
  steps: Step[];
  /** Data a `register:` sees (stat results, file contents, messages). */
  result?: Record<string, unknown>;
  /** Set when the module decides at plan time that the task fails (assert, fail). */
  failed?: string;
  /**
   * The resource whose absence made it fail ("file /etc/x", "group web"): when an earlier task of
   * the same plan creates it, the plan says "known after apply" instead of failing.
   */
  needs?: string;
  /** Variables the task sets for the host (set_fact). */
  setFacts?: Record<string, unknown>;
}

/** What a module may touch while gathering facts: the host, read-only. */
export interface ModuleContext {
  host: Host;
  exec(script: string, opts?: ExecOptions): Promise<ExecResult>;
  facts(): Promise<HostFacts>;
  /** Controller-side lookup of a role's / playbook's templates/ and files/. */
  findFile(kind: 'templates' | 'files', name: string): string;
  /** Variables visible to the task, secrets revealed (for rendering). */
  vars: Record<string, unknown>;
  /** Registers a plaintext that must never be printed. */
  sensitive(value: string): void;
}

/** Evaluates against the task's variables: a condition (bare expression) or a `{{ … }}` string. */
export interface TaskEvaluator {
  condition(expr: string): boolean;
  render(text: string): unknown;
}

export interface Module<A = any, F = any> {
  name: string;
  /** JSON schema of the arguments (validated before any host is touched). */
  schema: object;
  /** Controller-side preparation (render a template, read a file). */
  prepare?(args: A, ctx: ModuleContext): Promise<A> | A;
  facts(args: A, ctx: ModuleContext): Promise<F>;
  plan(args: A, facts: F): Planned;
  /**
   * Arguments that need the task's variables beyond plain rendering (assert's `that` are bare
   * expressions, debug's `var` names a variable): given the raw and the rendered arguments and an
   * evaluator over the task's variables, returns the arguments the module validates and plans.
   */
  renderArgs?(raw: Record<string, unknown>, rendered: Record<string, any>, evaluate: TaskEvaluator): Record<string, any>;
  /**
   * Its facts only read the host, with no wait and no side effect: the runner may gather them
   * ahead of the task, batched with other tasks' (prefetch.ts).
   */
  batchFacts?: boolean;
  /** A plan cannot know whether its steps change anything (command, shell): report them as changes. */
  changesDecidedAtApply?: boolean;
  /** A task may give this module a bare string (`command: "systemctl daemon-reload"`): the argument it fills. */
  freeFormArg?: string;
  /** What the report prints for an ok result (debug's message). */
  message?(result: Record<string, unknown>): string | undefined;
  /** Runs the planned steps; default: sequentially, stop at the first failure. */
  apply?(planned: Planned, ctx: ModuleContext): Promise<Record<string, unknown> | void>;
}

export function noChange(result?: Record<string, unknown>): Planned {
  return { changes: [], steps: [], result };
}

export function defineModule<A, F>(m: Module<A, F>): Module<A, F> {
  return m;
}
