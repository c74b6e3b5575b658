# Shared by every page (the layout, error pages, forms).
web-product = qcert
web-skip = Skip to the content
web-nav = Main menu
web-language = Language
web-signed-in-as = Signed in as { $name }
web-sign-out = Sign out
web-error-title = Something was not right
web-error-back = Go back and try again.
web-forbidden-title = Not allowed
web-cross-site = This form was sent from another site. Open the page on this site and send it again.
web-form-type = The form was not sent as a web form (application/x-www-form-urlencoded).
web-form-too-large = The form is too large.
web-form-field = The field “{ $field }” is missing or not valid.
web-form-unreadable = The form could not be read.
web-not-found-title = Page not found
web-not-found = There is no page at this address. Check the link you followed.
web-minutes = { $n ->
    [one] { $n } minute
   *[other] { $n } minutes
}
web-hours = { $n ->
    [one] { $n } hour
   *[other] { $n } hours
}
web-days = { $n ->
    [one] { $n } day
   *[other] { $n } days
}
