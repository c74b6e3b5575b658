# Paginile biroului operatorilor: linia telefonică, coada RA și comenzile, căutarea titularului, jurnalul de audit, indicatorii.
desk-internal-error = Ceva nu a mers bine la noi. Încercați din nou; dacă se repetă, anunțați administratorul.
desk-serial = Număr de serie
desk-holder = Titular
desk-subject = Subiect
desk-reason = Motiv
desk-revoked-at = Revocat la
desk-status = Stare
desk-not-after = Valabil până la
desk-product = Produs
desk-document-number = Numărul actului de identitate
desk-given-name = Prenume
desk-surname = Nume
desk-country = Țara
desk-national-id = Cod numeric personal
desk-document-type = Tipul actului de identitate
desk-email = E-mail
desk-phone = Telefon
desk-not-given = nu a fost indicat
desk-doc-passport = pașaport
desk-doc-id-card = carte de identitate
desk-years = { $n ->
    [one] { $n } an
    [few] { $n } ani
   *[other] { $n } de ani
}
desk-tell-caller = Spuneți-i apelantului:
desk-reason-key-compromise = Cheie compromisă (pierdută sau furată)
desk-reason-affiliation-changed = Datele s-au schimbat
desk-reason-superseded = Înlocuit cu un certificat nou
desk-reason-cessation = Nu mai este necesar
desk-reason-unspecified = Fără motiv declarat
desk-status-valid = valabil
desk-status-revoked = revocat
desk-status-expired = expirat
desk-status-not-issued = neemis

desk-hotline-title = Revocare prin telefon
desk-hotline-intro = Tastați numărul actului de identitate și parola de revocare de 8 cifre pe care le citește apelantul, alegeți motivul și apăsați Enter.
desk-hotline-password = Parola de revocare
desk-hotline-password-hint = 8 cifre, din livrarea codurilor secrete a titularului.
desk-hotline-submit = Revocă
desk-hotline-revoked = { $n ->
    [one] Revocat: { $n } certificat
    [few] Revocate: { $n } certificate
   *[other] Revocate: { $n } de certificate
}
desk-hotline-already = era deja revocat
desk-hotline-say-revoked = { $n ->
    [one] Certificatul lui { $name } este revocat acum și nu mai poate fi folosit. Apare în lista de revocare în câteva minute. Nu mai este nevoie de alt pas.
   *[other] Cele { $n } certificate ale lui { $name } sunt revocate acum și nu mai pot fi folosite. Apar în lista de revocare în câteva minute. Nu mai este nevoie de alt pas.
}
desk-hotline-refused = Nu a fost revocat nimic
desk-hotline-say-refused = Vă rugăm să verificați numărul actului de identitate și cele 8 cifre ale parolei de revocare din livrarea codurilor secrete și să sunați din nou. Dacă nu ajută, puteți cere revocarea imediată în persoană: un ofițer RA de la un birou de înregistrare revocă certificatul sau vă dă o parolă de revocare nouă, după ce vă verifică actul de identitate. Dacă aveți încă cheia certificatului, îl puteți revoca oricând și singur, cu o cerere semnată cu acea cheie.
desk-hotline-refused-more = Linia telefonică nu poate spune mai mult despre acest apel: un număr necunoscut, o parolă greșită și un certificat blocat primesc același răspuns.
desk-hotline-invalid = Corectați formularul
desk-hotline-invalid-document = Numărul actului de identitate are între 5 și 20 de litere și cifre (spațiile și cratimele nu contează).
desk-hotline-invalid-password = Parola de revocare are exact 8 cifre: rugați apelantul să o citească din nou.
desk-hotline-invalid-reason = Alegeți un motiv din listă.

desk-ra-title = Coada de validare a identității
desk-ra-waiting = { $n ->
    [one] { $n } comandă așteaptă validarea identității.
    [few] { $n } comenzi așteaptă validarea identității.
   *[other] { $n } de comenzi așteaptă validarea identității.
}
desk-ra-overdue-count = { $n ->
    [one] { $n } a depășit promisiunea de 24 de ore.
    [few] { $n } au depășit promisiunea de 24 de ore.
   *[other] { $n } au depășit promisiunea de 24 de ore.
}
desk-ra-as-of = La { $time }.
desk-ra-reload = Reîncarcă
desk-ra-empty = Nicio comandă nu așteaptă.
desk-ra-caption = Comenzi care așteaptă validarea identității, cea mai veche promisiune întâi
desk-ra-paid = Plătită
desk-ra-due = Promisă până la
desk-ra-left = Timp rămas
desk-ra-overdue-by = depășită cu { $time }
desk-ra-back = Înapoi la coadă
desk-ra-order-title = Comanda lui { $name }
desk-ra-identity = Identitate
desk-ra-order = Comandă
desk-ra-order-id = Numărul comenzii
desk-ra-state = Stare
desk-ra-rejection-reason = Motivul respingerii
desk-ra-decide = Decizie
desk-ra-checked-document = Numărul actului de identitate verificat
desk-ra-checked-document-hint = Tastați-l de pe actul arătat de titular; este comparat cu cel din comandă.
desk-ra-approve = Aprobă
desk-ra-reject-reason = De ce nu a putut fi validată identitatea
desk-ra-reject-reason-hint = Titularul primește acest text prin e-mail, cu un link pentru a încerca din nou.
desk-ra-reject = Respinge
desk-ra-approved = Aprobată. Titularul a primit pasul următor.
desk-ra-rejected = Respinsă. Titularul a primit motivul prin e-mail.
desk-ra-delivery = Livrarea codurilor secrete
desk-ra-delivery-state = Stare
desk-ra-delivery-links = Linkuri create
desk-ra-delivery-wrong = Coduri greșite pe linkul curent
desk-delivery-none = încă necreată
desk-delivery-waiting = așteaptă titularul
desk-delivery-blocked = blocată după coduri greșite
desk-delivery-revealed = deschisă de titular
desk-ra-take-code = Arată codul de generare în așteptare
desk-ra-reissue = Link și cod de livrare noi
desk-ra-code-taken = Codul de generare este mai jos.
desk-ra-reissued = Un link de livrare nou a fost trimis titularului; linkurile anterioare nu mai funcționează.
desk-ra-code-once = Citiți acum codul titularului: este afișat o singură dată.
desk-ra-history = Istoric
desk-ra-history-empty = Nimic înregistrat încă.

desk-holders-title = Căutarea titularului
desk-holders-hint = De pe actul de identitate pe care vi-l arată titularul.
desk-holders-search = Caută
desk-holders-found = { $n ->
    [one] { $n } certificat
    [few] { $n } certificate
   *[other] { $n } de certificate
}
desk-holders-hotline = Revocare prin telefon
desk-holders-locked = blocată după parole greșite: dați o parolă de revocare nouă
desk-holders-open = deschisă
desk-holders-revoke = Revocă acum
desk-holders-new-password = Parolă de revocare nouă
desk-holders-revoked = Certificatul { $serial } a fost revocat ({ $reason }) la { $time }.
desk-holders-already-revoked = Certificatul { $serial } era deja revocat ({ $reason }) la { $time }.
desk-password-title = Parolă de revocare nouă
desk-password-once = Tipăriți această pagină sau copiați acum parola pentru titular: este afișată o singură dată și nu este păstrată în clar.
desk-password-label = Parola de revocare
desk-password-issued = Emisă
desk-password-officer = Ofițer RA
desk-password-keep = Păstrați această parolă separat de dispozitivul certificatului. Împreună cu numărul actului de identitate vă permite să revocați certificatul prin telefon. Parola anterioară nu mai funcționează.
desk-password-done = Gata: înapoi la căutarea titularului

desk-audit-title = Jurnalul de audit
desk-audit-intact = Lanțul este intact.
desk-audit-entries = { $n ->
    [one] { $n } intrare verificată.
    [few] { $n } intrări verificate.
   *[other] { $n } de intrări verificate.
}
desk-audit-head = Capăt: { $hash }
desk-audit-broken = Lanțul este rupt.
desk-audit-broken-at = Intrarea { $seq } nu decurge din cea dinainte; { $n } intrări dinaintea ei sunt în regulă.
desk-audit-filter = Filtru
desk-audit-subject = Subiect
desk-audit-actor = Autor
desk-audit-actor-hint = Rol și nume, de ex. ra-officer:radu, sau holder, payment-provider.
desk-audit-since = De la (UTC)
desk-audit-until = Până la (UTC)
desk-audit-apply = Arată
desk-audit-clear = Șterge filtrul
desk-audit-none = Nicio intrare nu se potrivește.
desk-audit-caption = Intrări de audit, cele mai noi întâi
desk-audit-at = Ora
desk-audit-action = Acțiune
desk-audit-outcome = Rezultat
desk-audit-detail = Detalii
desk-audit-older = Intrări mai vechi

desk-metrics-title = Rezumat
desk-metrics-queue = Comenzi
desk-metrics-waiting = Așteaptă validarea identității
desk-metrics-overdue = Au depășit promisiunea de 24 de ore
desk-metrics-refunds = Plăți de rambursat
desk-metrics-checks = Verificări de parolă la telefon de la pornire
desk-metrics-crls = Liste de revocare
desk-metrics-no-crl = Nicio listă de revocare publicată încă.
desk-metrics-crl = Lista
desk-metrics-crl-issuing = CA emitentă
desk-metrics-crl-root = Rădăcina (ARL)
desk-metrics-crl-issued = Emisă
desk-metrics-crl-age = Vechime
desk-metrics-crl-next = Următoarea actualizare
desk-metrics-crl-entries = Intrări
