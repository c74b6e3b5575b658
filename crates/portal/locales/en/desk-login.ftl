# The desk login, sessions, home and operator accounts.
desk-role-admin = admin
desk-role-ra-officer = RA officer
desk-role-hotline-agent = hotline agent
desk-role-needed = This page is for the { $role } role.
desk-csrf-refused = This form is out of date or was not sent from the desk. Reload the page and send it again.
desk-session-needed = You are not signed in, or your session ended. Sign in again.
desk-internal = The desk could not check your session. Try again in a moment.
desk-area-home = Desk
desk-area-hotline = Hotline
desk-area-ra = Identity queue
desk-area-holders = Holder lookup
desk-area-operators = Operator accounts
desk-area-audit = Audit log
desk-area-metrics = Metrics
desk-home-title = Operators' desk
desk-home-intro = Signed in as { $name } ({ $role }). What your role may open:
desk-home-totp = Set up an authenticator app (allowed for your account as a fallback)
