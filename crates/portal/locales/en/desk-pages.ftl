# The operators' desk pages: hotline, RA queue and orders, holder lookup, audit log, metrics.
desk-internal-error = Something went wrong on our side. Try again; if it keeps happening, tell the administrator.
desk-serial = Serial
desk-holder = Holder
desk-subject = Subject
desk-reason = Reason
desk-revoked-at = Revoked at
desk-status = Status
desk-not-after = Valid until
desk-product = Product
desk-document-number = ID document number
desk-given-name = Given name
desk-surname = Surname
desk-country = Country
desk-national-id = National identifier
desk-document-type = ID document type
desk-email = Email
desk-phone = Phone
desk-not-given = not given
desk-doc-passport = passport
desk-doc-id-card = identity card
desk-years = { $n ->
    [one] { $n } year
   *[other] { $n } years
}
desk-tell-caller = Tell the caller:
desk-reason-key-compromise = Key compromised (lost or stolen)
desk-reason-affiliation-changed = Details changed
desk-reason-superseded = Replaced by a new certificate
desk-reason-cessation = No longer needed
desk-reason-unspecified = No reason given
desk-status-valid = valid
desk-status-revoked = revoked
desk-status-expired = expired
desk-status-not-issued = not issued

desk-hotline-title = Hotline revocation
desk-hotline-intro = Type the ID document number and the 8-digit revocation password the caller reads out, choose the reason and press Enter.
desk-hotline-password = Revocation password
desk-hotline-password-hint = 8 digits, from the holder's secret delivery.
desk-hotline-submit = Revoke
desk-hotline-revoked = { $n ->
    [one] Revoked: { $n } certificate
   *[other] Revoked: { $n } certificates
}
desk-hotline-already = it was already revoked
desk-hotline-say-revoked = { $n ->
    [one] The certificate of { $name } is revoked now and cannot be used again. It appears on the revocation list within minutes. No other step is needed.
   *[other] The { $n } certificates of { $name } are revoked now and cannot be used again. They appear on the revocation list within minutes. No other step is needed.
}
desk-hotline-refused = Nothing was revoked
desk-hotline-say-refused = Please check the ID document number and the 8 digits of the revocation password from your secret delivery, and call again. If that does not help, you can have the certificate revoked at once in person: an RA officer at a registration office revokes it, or gives you a new revocation password, after checking your ID document. If you still have the certificate's key, you can also revoke it yourself at any time with a request signed with that key.
desk-hotline-refused-more = The hotline cannot say more about this call: an unknown number, a wrong password and a locked certificate get the same answer.
desk-hotline-invalid = Please correct the form
desk-hotline-invalid-document = The ID document number needs 5 to 20 letters and digits (spaces and hyphens are ignored).
desk-hotline-invalid-password = The revocation password is exactly 8 digits: ask the caller to read it again.
desk-hotline-invalid-reason = Choose a reason from the list.

desk-ra-title = Identity validation queue
desk-ra-waiting = { $n ->
    [one] { $n } order waits for identity validation.
   *[other] { $n } orders wait for identity validation.
}
desk-ra-overdue-count = { $n ->
    [one] { $n } is past the 24-hour promise.
   *[other] { $n } are past the 24-hour promise.
}
desk-ra-as-of = As of { $time }.
desk-ra-reload = Reload
desk-ra-empty = No order is waiting.
desk-ra-caption = Orders waiting for identity validation, oldest promise first
desk-ra-paid = Paid
desk-ra-due = Promised by
desk-ra-left = Time left
desk-ra-overdue-by = overdue by { $time }
desk-ra-back = Back to the queue
desk-ra-order-title = Order of { $name }
desk-ra-identity = Identity
desk-ra-order = Order
desk-ra-order-id = Order number
desk-ra-state = State
desk-ra-rejection-reason = Rejection reason
desk-ra-decide = Decision
desk-ra-checked-document = ID document number you checked
desk-ra-checked-document-hint = Type it from the document the holder shows; it is compared with the one given in the order.
desk-ra-approve = Approve
desk-ra-reject-reason = Why the identity could not be validated
desk-ra-reject-reason-hint = The holder receives this text by email, with a link to try again.
desk-ra-reject = Reject
desk-ra-approved = Approved. The holder has been sent the next step.
desk-ra-rejected = Rejected. The holder has been sent the reason by email.
desk-ra-delivery = Secret delivery
desk-ra-delivery-state = State
desk-ra-delivery-links = Links made
desk-ra-delivery-wrong = Wrong codes on the current link
desk-delivery-none = not made yet
desk-delivery-waiting = waiting for the holder
desk-delivery-blocked = blocked after wrong codes
desk-delivery-revealed = opened by the holder
desk-ra-take-code = Show the waiting generation code
desk-ra-reissue = New delivery link and code
desk-ra-code-taken = The generation code is below.
desk-ra-reissued = A new delivery link was mailed to the holder; the earlier links no longer work.
desk-ra-code-once = Read this code to the holder now: it is shown only once.
desk-ra-history = History
desk-ra-history-empty = Nothing recorded yet.

desk-holders-title = Holder lookup
desk-holders-hint = From the ID document the holder shows you.
desk-holders-search = Look up
desk-holders-found = { $n ->
    [one] { $n } certificate
   *[other] { $n } certificates
}
desk-holders-hotline = Hotline revocation
desk-holders-locked = locked after wrong passwords: give a new revocation password
desk-holders-open = open
desk-holders-revoke = Revoke now
desk-holders-new-password = New revocation password
desk-holders-revoked = Certificate { $serial } revoked ({ $reason }) at { $time }.
desk-holders-already-revoked = Certificate { $serial } was already revoked ({ $reason }) at { $time }.
desk-password-title = New revocation password
desk-password-once = Print this page or copy the password for the holder now: it is shown only once and is not stored in clear.
desk-password-label = Revocation password
desk-password-issued = Issued
desk-password-officer = RA officer
desk-password-keep = Keep this password apart from the certificate's device. With the ID document number it lets you revoke the certificate by phone. The earlier password no longer works.
desk-password-done = Done: back to the holder lookup

desk-audit-title = Audit log
desk-audit-intact = The chain is intact.
desk-audit-entries = { $n ->
    [one] { $n } entry checked.
   *[other] { $n } entries checked.
}
desk-audit-head = Head: { $hash }
desk-audit-broken = The chain is broken.
desk-audit-broken-at = Entry { $seq } does not follow from the one before; { $n } entries before it check out.
desk-audit-filter = Filter
desk-audit-subject = Subject
desk-audit-actor = Actor
desk-audit-actor-hint = Role and name, e.g. ra-officer:radu, or holder, payment-provider.
desk-audit-since = From (UTC)
desk-audit-until = Until (UTC)
desk-audit-apply = Show
desk-audit-clear = Clear the filter
desk-audit-none = No entry matches.
desk-audit-caption = Audit entries, newest first
desk-audit-at = Time
desk-audit-action = Action
desk-audit-outcome = Outcome
desk-audit-detail = Detail
desk-audit-older = Older entries

desk-metrics-title = Summary
desk-metrics-queue = Orders
desk-metrics-waiting = Waiting for identity validation
desk-metrics-overdue = Past the 24-hour promise
desk-metrics-refunds = Payments to refund
desk-metrics-checks = Hotline password checks since start
desk-metrics-crls = Revocation lists
desk-metrics-no-crl = No revocation list published yet.
desk-metrics-crl = List
desk-metrics-crl-issuing = Issuing CA
desk-metrics-crl-root = Root (ARL)
desk-metrics-crl-issued = Issued
desk-metrics-crl-age = Age
desk-metrics-crl-next = Next update
desk-metrics-crl-entries = Entries
