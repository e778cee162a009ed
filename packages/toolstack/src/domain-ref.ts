/** A domain named as `xsim` names it: HOST/DOMAIN. */
export interface DomainRef {
  host: string;
  /** 'dom0' or a domU name. */
  domain: string;
}
