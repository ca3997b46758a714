/**
 * Records the fixtures in test/fixtures/nft/ from real `nft -j list ruleset` output in
 * network namespaces (see the README there). Run as root:
 *
 *   npx tsc -p . && node dist/test/lib/baseline/nft-record.js
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderBulwarkTable, type NftablesBaseline } from '../../../lib/baseline/index.js';
import { DEFAULT_BASELINE, withNetns } from './nft-netns.js';

export const FIXTURE_DIR = fileURLToPath(new URL('../../../../test/fixtures/nft/', import.meta.url));

export const SADDR_BASELINE: NftablesBaseline = {
  ...DEFAULT_BASELINE,
  inbound: [
    { protocol: 'tcp', port: 22, sources: ['10.0.0.0/8', '2001:db8::/32'], comment: 'ssh from admin networks' },
    { protocol: 'tcp', port: 443 },
  ],
};

export const CNI_BASELINE: NftablesBaseline = {
  ...DEFAULT_BASELINE,
  forward: {
    policy: 'drop',
    exemptions: [
      { iifname: 'cni-podman0', comment: 'podman containers out' },
      { oifname: 'cni-podman0', comment: 'podman containers in' },
      { iifname: 'nomad', comment: 'nomad bridge' },
    ],
  },
  foreignTables: [
    { family: 'ip', name: 'filter', owner: 'podman (iptables-nft)' },
    { family: 'ip', name: 'nat', owner: 'podman (iptables-nft)' },
    { family: 'inet', name: 'nomad*', owner: 'nomad' },
  ],
};

/** A Podman (CNI, iptables-nft) and Nomad bridge setup written by hand after what they install. */
export const CNI_TABLES = `
table ip filter {
  chain FORWARD {
    type filter hook forward priority filter; policy accept;
    jump CNI-FORWARD
  }
  chain CNI-FORWARD {
    jump CNI-ADMIN
    ip daddr 10.88.0.0/16 ct state related,established accept
    ip saddr 10.88.0.0/16 accept
  }
  chain CNI-ADMIN {
  }
  chain INPUT {
    type filter hook input priority filter; policy accept;
  }
}
table ip nat {
  chain PREROUTING {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump CNI-HOSTPORT-DNAT
  }
  chain OUTPUT {
    type nat hook output priority -100; policy accept;
    fib daddr type local jump CNI-HOSTPORT-DNAT
  }
  chain POSTROUTING {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.88.0.5 jump CNI-8a6e1f
  }
  chain CNI-HOSTPORT-DNAT {
    tcp dport 8080 jump CNI-DN-8a6e1f
  }
  chain CNI-DN-8a6e1f {
    tcp dport 8080 dnat to 10.88.0.5:80
  }
  chain CNI-8a6e1f {
    ip daddr 10.88.0.0/16 accept
    ip daddr != 224.0.0.0/4 masquerade
  }
}
table inet nomad-bridge {
  chain forward {
    type filter hook forward priority filter + 5; policy accept;
    iifname "nomad" accept
    oifname "nomad" ct state established,related accept
  }
}
`;

/** Every fixture: its name and the nft text applied (in order) to an empty namespace. */
export function fixtureScripts(): ReadonlyArray<readonly [string, readonly string[]]> {
  const base = renderBulwarkTable(DEFAULT_BASELINE);
  return [
    ['default', [base]],
    ['extra-8080', [base, 'add rule inet bulwark input tcp dport 8080 accept\n']],
    ['bulwark-deleted', [base, 'delete table inet bulwark\n']],
    ['input-policy-accept', [base, 'chain inet bulwark input { policy accept; }\n']],
    ['forward-policy-accept', [base, 'chain inet bulwark forward { policy accept; }\n']],
    [
      'second-table-accept-all',
      [base, 'table inet other {\n  chain input {\n    type filter hook input priority filter + 20; policy accept;\n    counter accept\n  }\n}\n'],
    ],
    [
      'named-set',
      [
        base,
        'table inet bulwark {\n  set extra {\n    type inet_service; flags interval; counter;\n    elements = { 8080, 9000-9010 }\n  }\n}\nadd rule inet bulwark input tcp dport @extra counter accept\n',
      ],
    ],
    [
      'jump-goto',
      [
        base,
        [
          'table inet bulwark {',
          '  chain services { udp dport 53 accept; tcp dport 25 return; goto web; }',
          '  chain web { tcp dport { 25, 80 } accept; }',
          '}',
          'add rule inet bulwark input meta l4proto { tcp, udp } jump services',
          '',
        ].join('\n'),
      ],
    ],
    ['saddr-restricted', [renderBulwarkTable(SADDR_BASELINE)]],
    ['podman-nomad-cni', [renderBulwarkTable(CNI_BASELINE), CNI_TABLES]],
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [name, scripts] of fixtureScripts()) {
    const json = await withNetns((ns) => {
      for (const s of scripts) ns.nft(s);
      // Traffic on lo so that counters are not all zero (they must not matter).
      ns.run(['ip', 'link', 'set', 'lo', 'up']);
      ns.run(['node', '-e', "const s=require('node:dgram').createSocket('udp4');s.send('x',9,'127.0.0.1',()=>s.close())"]);
      return ns.listJson();
    });
    writeFileSync(`${FIXTURE_DIR}${name}.json`, json);
    process.stdout.write(`${name}.json\n`);
  }
}
