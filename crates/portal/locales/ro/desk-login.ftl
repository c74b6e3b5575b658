# Autentificarea la birou, sesiuni, pagina de start și conturile operatorilor.
desk-role-admin = administrator
desk-role-ra-officer = ofițer RA
desk-role-hotline-agent = agent hotline
desk-role-needed = Această pagină este pentru rolul { $role }.
desk-csrf-refused = Formularul este expirat sau nu a fost trimis din birou. Reîncărcați pagina și trimiteți-l din nou.
desk-session-needed = Nu sunteți autentificat sau sesiunea s-a încheiat. Autentificați-vă din nou.
desk-internal = Biroul nu a putut verifica sesiunea. Încercați din nou peste câteva momente.
desk-area-home = Birou
desk-area-hotline = Hotline
desk-area-ra = Coada de identificare
desk-area-holders = Căutare titular
desk-area-operators = Conturi de operator
desk-area-audit = Jurnal de audit
desk-area-metrics = Indicatori
desk-home-title = Biroul operatorilor
desk-home-intro = Autentificat ca { $name } ({ $role }). Ce poate deschide rolul dumneavoastră:
desk-home-totp = Configurați o aplicație de autentificare (permisă pentru contul dumneavoastră ca rezervă)
