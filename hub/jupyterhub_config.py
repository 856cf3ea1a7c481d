"""JupyterHub configuration of the embedded hub that `nanorepo up` starts.

Thin on purpose: every piece (the nanorepo service, the idle culler, roles, the spawn
hook that builds each user's storage view, server sizes, lab accounts) comes from
`nanorepo.hub`, where the Kubernetes chart takes the same pieces from. Settings arrive in
the environment `nanorepo up` sets (NANOREPO_HOME, NANOREPO_UP_*); see hub/README.md.

Site settings: `c.NanorepoHub.*` traits go before the call (it reads them), e.g.
`c.NanorepoHub.cull_timeout = 7200`; the hub's own settings go after it, e.g.
`c.Spawner.start_timeout = 300`, or `configure_oidc(c, "orcid", ...)` for ORCID sign-in.
"""

from nanorepo.hub import configure_local

c = get_config()  # noqa: F821  (JupyterHub provides get_config)
configure_local(c)
