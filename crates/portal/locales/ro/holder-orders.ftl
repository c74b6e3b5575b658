# Paginile de comandă ale titularului: formularul de comandă, pagina comenzii
# și pașii ei, livrarea codurilor secrete, furnizorul de plată de TEST.

## Refuzuri
holder-orders-err-title = Nu a reușit
holder-orders-err-not-found = Nu există nimic la acest link: verificați că ați copiat linkul întreg din e-mail. Comenzile neplătite la timp expiră.
holder-orders-err-field = Câmpul „{ $field }” lipsește sau nu este valid.
holder-orders-err-csr = Cererea de certificat (CSR) a fost refuzată: { $why }
holder-orders-err-conflict = Acest pas nu se potrivește acum stadiului comenzii (poate a fost deja făcut). Deschideți pagina comenzii pentru a vedea următorul pas.
holder-orders-err-locked = Aplicația de autentificare este blocată după prea multe coduri greșite. Contactați-ne: un operator de înregistrare o deblochează după ce vă verifică identitatea.
holder-orders-err-rate = Prea multe încercări. Încercați din nou peste { $wait }.
holder-orders-err-code = Codul nu a fost acceptat: este greșit sau a fost deja folosit. Așteptați următorul cod din aplicație și trimiteți-l.
holder-orders-err-refused = Cererea a fost refuzată. Verificați ce ați introdus și încercați din nou.
holder-orders-err-internal = A apărut o eroare la noi. Încercați mai târziu; dacă persistă, contactați-ne.

## Pagina comenzii
holder-orders-order-title = Comanda dumneavoastră de certificat
holder-orders-order-facts = Comanda
holder-orders-fact-order = Comanda
holder-orders-fact-state = Stadiu
holder-orders-fact-product = Produs
holder-orders-fact-validity = Valabilitate
holder-orders-fact-price = Preț
holder-orders-fact-serial = Număr de serie
holder-orders-years = { $n ->
    [one] { $n } an
    [few] { $n } ani
   *[other] { $n } de ani
}
holder-orders-product-token = TOKEN (token de semnătură)
holder-orders-product-cloud = CLOUD (semnare la distanță)
holder-orders-product-token-hint = Cheia este generată pe propriul token calificat de semnătură (QSCD); încărcați cererea de certificat (CSR) a acestuia. Primiți codurile PIN și PUK ale tokenului.
holder-orders-product-cloud-hint = Cheia este păstrată în HSM-ul nostru și semnați la distanță, confirmând fiecare semnătură cu un cod dintr-o aplicație de autentificare de pe telefon.
holder-orders-state-awaiting-payment = în așteptarea plății
holder-orders-state-awaiting-identity = plătită; verificarea identității prin video
holder-orders-state-rejected = verificarea identității nefinalizată
holder-orders-state-approved = identitate confirmată
holder-orders-state-issuing = certificatul este în curs de emitere
holder-orders-state-issued = certificat emis
holder-orders-reason = Motiv:
holder-orders-next-step = Următorul pas
holder-orders-next-pay = Pentru a continua, plătiți comanda: { $price }.
holder-orders-next-identity = Verificarea identității prin video: operatorul de înregistrare vă contactează, iar răspunsul îl primiți prin e-mail până la { $due }. Până atunci nu aveți nimic de făcut aici.
holder-orders-next-resume = Reluați verificarea identității (fără o nouă plată).
holder-orders-next-enrol = Configurați aplicația de autentificare.
holder-orders-next-code = Trimiteți primul cod din aplicația de autentificare: acesta emite certificatul.
holder-orders-next-csr = Încărcați cererea de certificat (CSR) generată pe token.
holder-orders-next-wait = Nimic: certificatul este în curs de emitere și îl primiți prin e-mail.
holder-orders-next-certificate = Descărcați certificatul. Codurile secrete le primiți prin linkul dintr-un e-mail separat.
holder-orders-pay = Plătiți comanda
holder-orders-pay-test-hint = Această instalare qcert folosește un furnizor de plată de TEST: nu se încasează bani reali.
holder-orders-resume = Reluați verificarea identității
holder-orders-enrol = Configurați aplicația
holder-orders-certificate = Certificatul dumneavoastră
holder-orders-back = Înapoi la comandă
holder-orders-code-label = Codul din aplicația de autentificare
holder-orders-code-hint = 6 cifre. Un cod nou apare la fiecare 30 de secunde.
holder-orders-code-send = Trimiteți codul

## CSR (TOKEN)
holder-orders-csr-title = Încărcați cererea de certificat
holder-orders-csr-intro = Generați perechea de chei pe tokenul de semnătură cu programul acestuia și exportați cererea de certificat (CSR). Apoi lipiți-o mai jos sau alegeți fișierul ei.
holder-orders-csr-upload = Încărcați cererea CSR
holder-orders-csr-label = Cererea CSR ca text (PEM)
holder-orders-csr-hint = Începe cu -----BEGIN CERTIFICATE REQUEST-----.
holder-orders-csr-file = Sau fișierul CSR
holder-orders-csr-file-hint = PEM sau DER, așa cum l-a salvat programul tokenului.
holder-orders-csr-send = Încărcați
holder-orders-csr-terminal = Dintr-un terminal

## Aplicația de autentificare (CLOUD)
holder-orders-enrol-title = Configurați aplicația de autentificare
holder-orders-enrol-intro = Aveți nevoie pe telefon de o aplicație de autentificare pentru coduri unice bazate pe timp. Pagina următoare afișează secretul ei ca cod QR și ca text.
holder-orders-enrol-once = Secretul este afișat o singură dată: pregătiți telefonul și adăugați-l imediat în aplicație.
holder-orders-enrol-show = Afișați secretul
holder-orders-secret-title = Secretul aplicației de autentificare
holder-orders-secret-once = Adăugați acum acest secret în aplicația de autentificare. Este afișat doar acum: nu părăsiți și nu reîncărcați pagina până când aplicația nu afișează coduri.
holder-orders-secret-scan = Scanați codul QR cu aplicația
holder-orders-secret-qr-alt = Codul QR al secretului aplicației de autentificare (același secret este scris mai jos ca text)
holder-orders-secret-type = Sau introduceți-l manual
holder-orders-secret-key = Cheia (base32):
holder-orders-secret-uri = Linkul otpauth:

## Certificatul
holder-orders-cert-title = Certificatul dumneavoastră calificat
holder-orders-cert-download = Descărcare
holder-orders-cert-chain = Certificatul cu lanțul său (PEM)
holder-orders-cert-pem = Doar certificatul (PEM)
holder-orders-cert-der = Doar certificatul (DER, .cer)
holder-orders-cert-secrets = Parola de revocare (și, pentru un token, codurile PIN și PUK) le primiți prin linkul dintr-un e-mail separat.
holder-orders-cert-text = Certificatul ca text

## Livrarea codurilor secrete
holder-secrets-title = Codurile secrete ale certificatului
holder-secrets-intro-cloud = Acest link afișează parola de revocare o singură dată.
holder-secrets-intro-token = Acest link afișează o singură dată parola de revocare și codurile PIN și PUK ale tokenului.
holder-secrets-code-label = Cod de generare
holder-secrets-code-hint-cloud = Codul comunicat de operatorul de înregistrare. După 3 coduri greșite, linkul este blocat.
holder-secrets-code-hint-token = Codul tipărit pe plicul kitului. După 3 coduri greșite, linkul este blocat.
holder-secrets-show = Afișați codurile
holder-secrets-err-code = Codul de generare nu este corect. Verificați-l și încercați din nou: după 3 coduri greșite, linkul este blocat.
holder-secrets-blocked = Linkul este blocat după 3 coduri greșite. Contactați-ne: un operator de înregistrare vă trimite un link nou.
holder-secrets-retrieved = Nu mai aveți nimic de făcut: codurile au fost deja afișate o dată și șterse. Dacă le-ați pierdut, contactați-ne.
holder-secrets-superseded = Folosiți linkul din cel mai recent e-mail: acesta a fost înlocuit.
holder-secrets-once = Notați-le sau tipăriți pagina și păstrați-o în siguranță acum: este afișată o singură dată, iar codurile sunt șterse din sistemele noastre.
holder-secrets-password = Parola de revocare
holder-secrets-password-use = Cu parola de revocare puteți cere revocarea certificatului prin telefon (linia noastră o cere împreună cu numărul actului de identitate).
holder-secrets-pin-use = Schimbați codul PIN al tokenului la prima utilizare; codul PUK deblochează tokenul dacă PIN-ul este introdus greșit de prea multe ori.
holder-secrets-print = Tipăriți pagina din browser (Ctrl+P sau ⌘+P).

## Formularul de comandă
holder-orders-form-title = Comandați un certificat calificat
holder-orders-form-intro = După ce trimiteți formularul plătiți comanda, apoi operatorul de înregistrare vă verifică identitatea prin video în 24 de ore. Câmpurile sunt obligatorii, cu excepția celor marcate opțional.
holder-orders-problems = Există o problemă
holder-orders-prices = Prețuri
holder-orders-about-you = Despre dumneavoastră
holder-orders-about-you-hint = Așa cum sunt scrise în actul de identitate: certificatul le conține.
holder-orders-optional = (opțional)
holder-orders-f-product = Produs
holder-orders-f-years = Valabilitate
holder-orders-f-given-name = Prenume
holder-orders-f-surname = Nume de familie
holder-orders-f-email = Adresă de e-mail
holder-orders-f-phone = Număr de telefon
holder-orders-f-country = Țara
holder-orders-f-national-id = Cod de identificare personal
holder-orders-f-document-type = Act de identitate
holder-orders-f-id-document-number = Numărul actului de identitate
holder-orders-f-language = Limba e-mailurilor și a paginilor
holder-orders-h-given-name = Litere, spații, cratime, apostrofuri și puncte.
holder-orders-h-surname = Litere, spații, cratime, apostrofuri și puncte.
holder-orders-h-email = Aici trimitem linkurile comenzii; adresa este scrisă și în certificat.
holder-orders-h-phone = Format internațional, de ex. +40712345678. Pentru apelul operatorului de înregistrare.
holder-orders-h-country = Codul din două litere al țării care a emis actul de identitate, de ex. RO.
holder-orders-h-national-id = România: codul numeric personal (CNP, 13 cifre). Altfel identificatorul complet, de ex. PASDE-C01X00T47 (pașaport) sau IDCFR-123456789.
holder-orders-h-id-document-number = Numărul cărții de identitate sau al pașaportului pe care îl arătați la verificarea video (5 până la 20 de litere și cifre). Nu mai este afișat pe această pagină.
holder-orders-e-product = Alegeți TOKEN sau CLOUD.
holder-orders-e-years = Alegeți o valabilitate de 1, 2 sau 3 ani.
holder-orders-e-given-name = Introduceți prenumele ca în actul de identitate (litere, spații, cratime, apostrofuri, puncte; cel mult 64 de caractere).
holder-orders-e-surname = Introduceți numele de familie ca în actul de identitate (litere, spații, cratime, apostrofuri, puncte; cel mult 64 de caractere).
holder-orders-e-name-length = Prenumele și numele de familie au împreună mai mult de 64 de caractere.
holder-orders-e-email = Introduceți o adresă de e-mail precum nume@exemplu.ro.
holder-orders-e-phone = Introduceți numărul de telefon în format internațional: + și apoi 8 până la 15 cifre, de ex. +40712345678, sau lăsați câmpul gol.
holder-orders-e-country = Introduceți un cod de țară din două litere, precum RO.
holder-orders-e-national-id = Introduceți un cod de identificare valid: un CNP românesc de 13 cifre cu cifra de control corectă sau un identificator complet precum PASDE-C01X00T47.
holder-orders-e-document-type = Alegeți carte de identitate sau pașaport, sau niciuna.
holder-orders-e-id-document-number = Introduceți numărul actului de identitate: 5 până la 20 de litere și cifre.
holder-orders-e-language = Alegeți engleza sau româna.
holder-orders-e-open-unpaid = { $n ->
    [one] Această adresă de e-mail are deja o comandă neplătită deschisă: plătiți-o (linkul v-a fost trimis prin e-mail) sau așteptați să expire.
    [few] Această adresă de e-mail are deja { $n } comenzi neplătite deschise: plătiți una dintre ele (linkurile v-au fost trimise prin e-mail) sau așteptați să expire.
   *[other] Această adresă de e-mail are deja { $n } de comenzi neplătite deschise: plătiți una dintre ele (linkurile v-au fost trimise prin e-mail) sau așteptați să expire.
}
holder-orders-document = Act de identitate
holder-orders-doc-id-card = Carte de identitate
holder-orders-doc-passport = Pașaport
holder-orders-publish-legend = Registrul public
holder-orders-publish-what = Dacă sunteți de acord, oricine vă poate găsi certificatul în registrul nostru public după adresa de e-mail sau după nume. Registrul arată certificatul așa cum a fost emis: prenumele și numele de familie, țara, codul de identificare personal așa cum este scris în certificat (de ex. PNORO-…), adresa de e-mail, numărul de serie, perioada de valabilitate și dacă este revocat.
holder-orders-publish-label = Publicați certificatul meu în registrul public
holder-orders-form-send = Trimiteți comanda

## Furnizorul de plată de TEST
holder-pay-test-title = Furnizor de plată de TEST
holder-pay-test-banner = Aceasta este o pagină de plată de TEST oferită de qcert pentru încercare. Nu se încasează bani și nu se cere niciun card. O instalare reală vă trimite în schimb la furnizorul ei de plăți.
holder-pay-test-amount = Suma
holder-pay-test-paid = Această comandă este plătită.
holder-pay-test-button = Plătiți { $price } (TEST)
holder-pay-test-renewal = Reînnoire
holder-pay-test-renewal-paid = Această reînnoire este plătită.
holder-pay-test-renewal-back = Înapoi la reînnoire
