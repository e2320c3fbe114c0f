/**
 * The base of every component of this program. It places the component in its region (children
 * inherit the regional provider), hands children `{ parent: this }`, and refuses, as each child is
 * constructed, the two mistakes the naming rules forbid:
 *
 * - a child whose logical name does not start with `<component name>-`: two instances of a
 *   component would otherwise collide, and nobody could tell from a URN where a resource belongs;
 * - a child of a physically named AWS type (functions, roles, queues, tables, streams, secrets,
 *   log groups, alarms, dashboards, topics…) whose name was not made by the platform's naming (`RegionalPlatform.name`):
 *   a hand-made name escapes the `<productCode>-<env>-<region>-` prefix, the per-type length
 *   limits and the `.fifo` rule, and an unnamed one gets a random suffix from Pulumi.
 *
 * The refusal is a thrown error naming the component and the child, so the offline plan fails
 * before anything is deployed. The checks run in a Pulumi transformation, which sees every
 * child's arguments before it registers, whoever wrote the `new`.
 */
import * as pulumi from "@pulumi/pulumi";
import type { RegionalPlatform } from "./platform";

/**
 * AWS types whose physical name is unique in the account and region, and the input that holds
 * it (`name`, but a dashboard's is `dashboardName`).
 */
const PHYSICALLY_NAMED_TYPES: ReadonlyMap<string, string> = new Map([
  ["aws:lambda/function:Function", "name"],
  ["aws:iam/role:Role", "name"],
  ["aws:cloudwatch/logGroup:LogGroup", "name"],
  ["aws:cloudwatch/logDestination:LogDestination", "name"],
  ["aws:sqs/queue:Queue", "name"],
  ["aws:dynamodb/table:Table", "name"],
  ["aws:kinesis/stream:Stream", "name"],
  ["aws:secretsmanager/secret:Secret", "name"],
  ["aws:ec2/securityGroup:SecurityGroup", "name"],
  ["aws:apigateway/restApi:RestApi", "name"],
  ["aws:cloudwatch/metricAlarm:MetricAlarm", "name"],
  ["aws:cloudwatch/dashboard:Dashboard", "dashboardName"],
  ["aws:sns/topic:Topic", "name"],
]);

export abstract class Component extends pulumi.ComponentResource {
  /** The component's logical name: the prefix of every child's. */
  protected readonly logicalName: string;
  protected readonly platform: RegionalPlatform;

  /**
   * @param type `fan-identity:<layer>:<Name>`
   * @param platform the region the component deploys to; its provider becomes the children's
   */
  protected constructor(type: string, name: string, platform: RegionalPlatform, opts?: pulumi.ComponentResourceOptions) {
    // The transformation sees the component itself and every descendant; it checks only this
    // component's own children (a child component checks its own). `self` is set once `super`
    // returns, after the component's own registration and before any child's.
    const self: { component?: Component } = {};
    const checkChild: pulumi.ResourceTransformation = (child) => {
      if (!self.component || child.opts.parent !== self.component) return undefined;
      checkChildName(type, name, child);
      return { props: checkedPhysicalName(type, name, platform, child), opts: child.opts };
    };
    super(type, name, {}, pulumi.mergeOptions(opts, { providers: { aws: platform.provider }, transformations: [checkChild] }));
    self.component = this;
    this.logicalName = name;
    this.platform = platform;
  }

  /** Options of a child: parented here, and so in this component's region. */
  protected get child(): pulumi.CustomResourceOptions & pulumi.ComponentResourceOptions {
    return { parent: this };
  }

  /** The logical name of a child: `<component name>-<role>`. */
  protected childName(role: string): string {
    return `${this.logicalName}-${role}`;
  }
}

function checkChildName(type: string, name: string, child: pulumi.ResourceTransformationArgs): void {
  if (!child.name.startsWith(`${name}-`)) {
    throw new Error(`${type} "${name}": child ${child.type} "${child.name}" must be named "${name}-<role>", after its parent`);
  }
}

/** The child's properties, with its physical name checked (when it is known, or once it is). */
function checkedPhysicalName(
  type: string,
  name: string,
  platform: RegionalPlatform,
  child: pulumi.ResourceTransformationArgs,
): pulumi.Inputs {
  const nameInput = PHYSICALLY_NAMED_TYPES.get(child.type);
  if (!nameInput) return child.props;
  const where = `${type} "${name}": child ${child.type} "${child.name}"`;
  const check = (physical: unknown): string => {
    if (typeof physical !== "string" || !platform.issued(physical)) {
      throw new Error(
        physical === undefined
          ? `${where} has no physical name; give it one made by platform.name(…)`
          : `${where} is named "${String(physical)}" by hand; physical names come from platform.name(…)`,
      );
    }
    return physical;
  };
  const physical: unknown = child.props[nameInput];
  if (!pulumi.Output.isInstance(physical)) {
    check(physical);
    return child.props;
  }
  return { ...child.props, [nameInput]: physical.apply(check) };
}
