"""Job arguments that carry a secret for one spider process, and the variable each reaches it in.

The gateway gives the platform's own jobs these arguments; ``node.launcher`` moves them out of the
process's argv (which any user of the machine can read, and scrapyd logs) into its environment,
and no listing shows them to a tenant.
"""

SECRET_ARGUMENTS = {"_platform_token": "PLATFORM_INPUTS_TOKEN"}
INPUTS_TOKEN = "_platform_token"
INPUTS_TOKEN_VARIABLE = SECRET_ARGUMENTS[INPUTS_TOKEN]
