# The holder's order pages: the order form, the order's page and its steps,
# the secret delivery, the TEST payment provider.

## Refusals
holder-orders-err-title = This did not work
holder-orders-err-not-found = There is nothing behind this link: check that you copied the whole link from the email. Orders not paid in time expire.
holder-orders-err-field = “{ $field }” is missing or not valid.
holder-orders-err-csr = The certificate request (CSR) was refused: { $why }
holder-orders-err-conflict = This step does not fit the order's state now (it may already be done). Open your order page to see the next step.
holder-orders-err-locked = Your authenticator is locked after too many wrong codes. Contact us: a registration officer unlocks it after checking your identity.
holder-orders-err-rate = Too many attempts. Try again in { $wait }.
holder-orders-err-code = The code was not accepted: it is wrong or was already used. Wait for the next code in the app and send it.
holder-orders-err-refused = The request was refused. Check what you entered and try again.
holder-orders-err-internal = Something went wrong on our side. Try again later; if it persists, contact us.

## The order page
holder-orders-order-title = Your certificate order
holder-orders-order-facts = The order
holder-orders-fact-order = Order
holder-orders-fact-state = State
holder-orders-fact-product = Product
holder-orders-fact-validity = Validity
holder-orders-fact-price = Price
holder-orders-fact-serial = Serial number
holder-orders-years = { $n ->
    [one] { $n } year
   *[other] { $n } years
}
holder-orders-product-token = TOKEN (signature token)
holder-orders-product-cloud = CLOUD (remote signing)
holder-orders-product-token-hint = The key is made on your own qualified signature token (QSCD); you upload its certificate request (CSR). You receive the token's PIN and PUK.
holder-orders-product-cloud-hint = The key is kept in our HSM and you sign remotely, confirming each signature with a code from an authenticator app on your phone.
holder-orders-state-awaiting-payment = waiting for payment
holder-orders-state-awaiting-identity = paid; identity check by video
holder-orders-state-rejected = identity check not completed
holder-orders-state-approved = identity confirmed
holder-orders-state-issuing = certificate being issued
holder-orders-state-issued = certificate issued
holder-orders-reason = Reason:
holder-orders-next-step = Next step
holder-orders-next-pay = Pay the order: { $price }.
holder-orders-next-identity = The identity check by video: our registration officer contacts you, and you get the answer by email by { $due }. Nothing to do here until then.
holder-orders-next-resume = Resume the identity check (no new payment).
holder-orders-next-enrol = Set up your authenticator app.
holder-orders-next-code = Send the first code from your authenticator app: it issues your certificate.
holder-orders-next-csr = Upload the certificate request (CSR) made on your token.
holder-orders-next-wait = Nothing: the certificate is being issued and you get it by email.
holder-orders-next-certificate = Download your certificate. Your secrets come with the link in a separate email.
holder-orders-pay = Pay the order
holder-orders-pay-test-hint = This qcert installation uses a TEST payment provider: no real money is taken.
holder-orders-resume = Resume the identity check
holder-orders-enrol = Set up the authenticator
holder-orders-certificate = Your certificate
holder-orders-back = Back to your order
holder-orders-code-label = Code from your authenticator app
holder-orders-code-hint = 6 digits. A new code appears every 30 seconds.
holder-orders-code-send = Send the code

## CSR (TOKEN)
holder-orders-csr-title = Upload your certificate request
holder-orders-csr-intro = Create the key pair on your signature token with its software and export the certificate signing request (CSR). Then paste it below, or choose its file.
holder-orders-csr-upload = Upload the CSR
holder-orders-csr-label = The CSR as text (PEM)
holder-orders-csr-hint = Starts with -----BEGIN CERTIFICATE REQUEST-----.
holder-orders-csr-file = Or the CSR file
holder-orders-csr-file-hint = PEM or DER, as your token's software saved it.
holder-orders-csr-send = Upload
holder-orders-csr-terminal = From a terminal

## Authenticator (CLOUD)
holder-orders-enrol-title = Set up your authenticator
holder-orders-enrol-intro = You need an authenticator app for time-based one-time codes on your phone. The next page shows its secret as a QR code and as text.
holder-orders-enrol-once = The secret is shown only once: have your phone ready and add it to the app right away.
holder-orders-enrol-show = Show the secret
holder-orders-secret-title = Your authenticator secret
holder-orders-secret-once = Add this secret to your authenticator app now. It is shown only this once: do not leave or reload this page before the app shows codes.
holder-orders-secret-scan = Scan the QR code with the app
holder-orders-secret-qr-alt = QR code of your authenticator secret (the same secret is written below as text)
holder-orders-secret-type = Or type it in
holder-orders-secret-key = The key (base32):
holder-orders-secret-uri = The otpauth link:

## Certificate
holder-orders-cert-title = Your qualified certificate
holder-orders-cert-download = Download
holder-orders-cert-chain = Certificate with its chain (PEM)
holder-orders-cert-pem = Certificate only (PEM)
holder-orders-cert-der = Certificate only (DER, .cer)
holder-orders-cert-secrets = Your revocation password (and for a token, its PIN and PUK) come with the link in a separate email.
holder-orders-cert-text = The certificate as text

## Secret delivery
holder-secrets-title = Your certificate secrets
holder-secrets-intro-cloud = This link shows your revocation password once.
holder-secrets-intro-token = This link shows your revocation password and your token's PIN and PUK once.
holder-secrets-code-label = Generation code
holder-secrets-code-hint-cloud = The code our registration officer gives you. After 3 wrong codes the link is blocked.
holder-secrets-code-hint-token = The code printed on your kit's envelope. After 3 wrong codes the link is blocked.
holder-secrets-show = Show my secrets
holder-secrets-err-code = That generation code is not right. Check it and try again: after 3 wrong codes the link is blocked.
holder-secrets-blocked = This link is blocked after 3 wrong codes. Contact us: a registration officer sends you a new link.
holder-secrets-retrieved = Nothing to do: the secrets were already shown once and erased. If you lost them, contact us.
holder-secrets-superseded = Use the link in the latest email: this one was replaced.
holder-secrets-once = Write them down or print this page and keep it safe now: it is shown only once, and the secrets are erased from our systems.
holder-secrets-password = Revocation password
holder-secrets-password-use = The revocation password lets you have the certificate revoked by phone (our hotline asks for it with your ID document number).
holder-secrets-pin-use = Change the token's PIN at first use; the PUK unblocks the token if the PIN is entered wrongly too often.
holder-secrets-print = Print this page with your browser (Ctrl+P or ⌘+P).

## The order form
holder-orders-form-title = Order a qualified certificate
holder-orders-form-intro = After you send this form you pay the order, then our registration officer checks your identity by video within 24 hours. Fields are required unless marked optional.
holder-orders-problems = There is a problem
holder-orders-prices = Prices
holder-orders-about-you = About you
holder-orders-about-you-hint = As written on your identity document: your certificate states them.
holder-orders-optional = (optional)
holder-orders-f-product = Product
holder-orders-f-years = Validity
holder-orders-f-given-name = Given name
holder-orders-f-surname = Surname
holder-orders-f-email = Email address
holder-orders-f-phone = Phone number
holder-orders-f-country = Country
holder-orders-f-national-id = Personal identification number
holder-orders-f-document-type = Identity document
holder-orders-f-id-document-number = Identity document number
holder-orders-f-language = Language of our emails and pages
holder-orders-h-given-name = Letters, spaces, hyphens, apostrophes and periods.
holder-orders-h-surname = Letters, spaces, hyphens, apostrophes and periods.
holder-orders-h-email = We send the order's links here; it is also written in your certificate.
holder-orders-h-phone = International format, e.g. +40712345678. For the registration officer's call.
holder-orders-h-country = The two-letter code of the country that issued your identity document, e.g. RO.
holder-orders-h-national-id = Romania: your personal numeric code (CNP, 13 digits). Otherwise the full identifier, e.g. PASDE-C01X00T47 (passport) or IDCFR-123456789.
holder-orders-h-id-document-number = The number of the ID card or passport you show at the video check (5 to 20 letters and digits). It is not shown again on this page.
holder-orders-e-product = Choose TOKEN or CLOUD.
holder-orders-e-years = Choose a validity of 1, 2 or 3 years.
holder-orders-e-given-name = Enter your given name as on your identity document (letters, spaces, hyphens, apostrophes, periods; at most 64 characters).
holder-orders-e-surname = Enter your surname as on your identity document (letters, spaces, hyphens, apostrophes, periods; at most 64 characters).
holder-orders-e-name-length = Your given name and surname together are longer than 64 characters.
holder-orders-e-email = Enter an email address such as name@example.ro.
holder-orders-e-phone = Enter the phone number in international format: + then 8 to 15 digits, e.g. +40712345678, or leave it empty.
holder-orders-e-country = Enter a two-letter country code such as RO.
holder-orders-e-national-id = Enter a valid personal identification number: a Romanian CNP of 13 digits with its check digit, or a full identifier such as PASDE-C01X00T47.
holder-orders-e-document-type = Choose ID card or passport, or neither.
holder-orders-e-id-document-number = Enter the identity document number: 5 to 20 letters and digits.
holder-orders-e-language = Choose English or Romanian.
holder-orders-e-open-unpaid = { $n ->
    [one] This email address already has an unpaid order open: pay it (the link was emailed to you) or wait until it expires.
   *[other] This email address already has { $n } unpaid orders open: pay one of them (the links were emailed to you) or wait until they expire.
}
holder-orders-document = Identity document
holder-orders-doc-id-card = ID card
holder-orders-doc-passport = Passport
holder-orders-publish-legend = Public directory
holder-orders-publish-what = If you agree, anyone can find your certificate in our public directory by your email address or your name. The directory shows the certificate as issued: your given name and surname, country, personal identification number as written in the certificate (e.g. PNORO-…), email address, serial number, validity dates and whether it is revoked.
holder-orders-publish-label = Publish my certificate in the public directory
holder-orders-form-send = Send the order

## TEST payment provider
holder-pay-test-title = TEST payment provider
holder-pay-test-banner = This is a TEST payment page served by qcert for trying it out. No money is taken and no card is asked for. A real installation sends you to its payment provider instead.
holder-pay-test-amount = Amount
holder-pay-test-paid = This order is paid.
holder-pay-test-button = Pay { $price } (TEST)
holder-pay-test-renewal = Renewal
holder-pay-test-renewal-paid = This renewal is paid.
holder-pay-test-renewal-back = Back to the renewal
