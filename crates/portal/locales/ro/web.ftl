# Comune tuturor paginilor (macheta, paginile de eroare, formularele).
web-product = qcert
web-skip = Sari la conținut
web-nav = Meniul principal
web-language = Limba
web-signed-in-as = Autentificat ca { $name }
web-sign-out = Ieșire
web-error-title = Ceva nu a fost în regulă
web-error-back = Întoarceți-vă și încercați din nou.
web-forbidden-title = Nepermis
web-cross-site = Formularul a fost trimis de pe alt site. Deschideți pagina pe acest site și trimiteți-l din nou.
web-form-type = Formularul nu a fost trimis ca formular web (application/x-www-form-urlencoded).
web-form-too-large = Formularul este prea mare.
web-form-field = Câmpul „{ $field }” lipsește sau nu este valid.
web-form-unreadable = Formularul nu a putut fi citit.
web-not-found-title = Pagina nu a fost găsită
web-not-found = Nu există nicio pagină la această adresă. Verificați linkul urmat.
web-minutes = { $n ->
    [one] { $n } minut
    [few] { $n } minute
   *[other] { $n } de minute
}
web-hours = { $n ->
    [one] { $n } oră
    [few] { $n } ore
   *[other] { $n } de ore
}
web-days = { $n ->
    [one] { $n } zi
    [few] { $n } zile
   *[other] { $n } de zile
}
