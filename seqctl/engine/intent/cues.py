"""The phrases that tell each intent, in English, German, French and Spanish, matched on
folded text (lower case, no accents: see `text.fold`)."""

from __future__ import annotations

from seqctl.engine.intent.dates import EVENTS, MONTHS
from seqctl.engine.intent.text import LazyPattern, lazy


def _cues(*phrases: str) -> LazyPattern:
    return lazy(r"(?<![\w])(?:" + "|".join(phrases) + r")(?![\w])")


LEFT_COMPANY = _cues(
    # en
    r"(?:i|i'm|i am|she|he|they|is|am|are|was) no longer (?:with|at|part of|employed|working)",
    r"no longer (?:works?|working|employed|with the company|at the company)",
    r"(?:i|she|he|they|i've|i have|she's|he's|has|have) (?:recently |just )?left (?:the company|the "
    r"business|the firm|the team|[a-z0-9&.-]+(?: [a-z0-9&.-]+)? (?:in|last|a few|at the end|earlier"
    r"|back|some))",
    r"(?:i've|i have|she has|he has|has|have) (?:recently |since )?left",
    r"(?:doesn't|does not|don't|do not) work (?:here|there|at [\w&.-]+) any ?more",
    r"not with (?:the company|[\w&.-]+) any ?more",
    r"(?:my|her|his|their) last day (?:at|with|was)",
    r"moved on from",
    r"left (?:the company|the business|the firm|our company|the organi[sz]ation|us)",
    r"(?:retired|has retired|have retired)",
    # de
    r"nicht mehr (?:bei|im unternehmen|in der firma|fur die|fur [\w&.-]+ tatig|tatig|beschaftigt"
    r"|angestellt|im hause)",
    r"(?:habe|hat|haben) (?:das unternehmen|die firma|[\w&.-]+) (?:\w+ )?verlassen",
    r"(?:arbeite|arbeitet) (?:seit [\w. ]{1,20} )?nicht mehr",
    r"(?:ist|bin) (?:aus dem unternehmen |bei uns )?ausgeschieden",
    r"(?:mein|ihr|sein) letzter arbeitstag",
    # fr
    r"ne (?:fait|fais|faisons) plus partie",
    r"ne (?:travaille|travailles|travaillons) plus",
    r"(?:a|ai) quitte (?:l'entreprise|la societe|la boite|le groupe|[\w&.-]+)",
    r"n'(?:est|suis) plus (?:chez|dans|avec|en poste|salarie)",
    r"(?:mon|son) dernier jour",
    # es
    r"ya no (?:trabaja|trabajo|esta|estoy|forma|formo|pertenece|pertenezco) (?:en|con|parte|a"
    r"|para)",
    r"(?:ha dejado|he dejado|dejo|deje) (?:la empresa|la compania|(?:[\w&.-]+ ){1,3}(?:el|hace|en"
    r"|a finales|este|a principios))",
    r"(?:mi|su) ultimo dia",
)
WRONG_PERSON = _cues(
    # en
    r"(?:not|wrong|isn't|is not|am not|i'm not) (?:really )?the (?:right|correct|best|appropriate"
    r"|relevant) (?:person|contact|one|people)",
    r"(?:the )?wrong (?:person|contact|guy|team|department)",
    r"(?:i'm|i am) not (?:responsible|in charge|involved|the decision maker|the one who"
    r"|the person who)",
    r"(?:not|isn't|is not) (?:my|in my) (?:area|department|responsibility|role|remit|wheelhouse"
    r"|call|decision)",
    r"(?:i|we) (?:don't|do not) (?:handle|deal with|work on|look after|own|manage|make) "
    r"(?:this|that|these|those|purchasing|procurement|tooling|such|vendor|the)",
    r"(?:outside|out of) (?:of )?my (?:remit|scope|area|role)",
    r"(?:i have|i've) nothing to do with",
    r"(?:i|we) (?:don't|do not) (?:make|take|own) (?:the |any )?(?:decisions?|call)",
    r"nichts (?:damit |mit (?:dem|diesem) (?:thema|bereich) )?zu tun",
    r"no (?:tomo|tengo) (?:las |ninguna )?(?:decisiones|decision)",
    # de
    r"nicht (?:der|die) (?:richtige|passende|korrekte|zustandige)(?:n)? "
    r"(?:ansprechpartner|ansprechpartnerin|person|kontakt|adresse)",
    r"falsche(?:r|n)? (?:ansprechpartner|ansprechpartnerin|person|kontakt|adresse)",
    r"(?:bin|sind) (?:dafur |hierfur |da )?(?:leider )?nicht zustandig",
    r"nicht (?:mein|in meinem) (?:bereich|thema|zustandigkeitsbereich|ressort)",
    r"dafur bin ich (?:leider )?nicht",
    # fr
    r"(?:pas|plus) (?:la|le) (?:bonne|bon) (?:personne|interlocuteur|interlocutrice|contact)",
    r"ne suis pas (?:la personne|le responsable|la responsable|en charge|concerne|decisionnaire)",
    r"ne (?:m'occupe|gere|traite) pas",
    r"(?:pas|ne releve pas) (?:de mon ressort|de mon domaine|mon domaine|de mon perimetre)",
    r"mauvais(?:e)? (?:personne|interlocuteur|interlocutrice|contact)",
    # es
    r"no soy (?:la persona|el contacto) (?:adecuad[ao]|indicad[ao]|correct[ao]|apropiad[ao])",
    r"(?:persona|contacto) equivocad[ao]",
    r"no (?:me encargo|llevo|gestiono|me ocupo) (?:de|del|este|esto|eso|esa|ese|los|las|temas)",
    r"no es (?:mi|de mi) (?:area|departamento|responsabilidad|competencia)",
    r"no soy (?:el|la) (?:responsable|encargad[ao]|que decide)",
    r"no soy quien",
)
# A pointer to someone else; with their address in the text it makes a referral.
REFERRAL = _cues(
    # en
    r"(?:reach out|talk|speak|get in touch|connect|chat|follow up|touch base) (?:directly )?(?:to"
    r"|with)",
    r"(?:please |best to |better to |you should |try |you can |you could )?(?:contact|email|e-mail"
    r"|ping|write to|try)",
    r"(?:cc'?ing|cc'?d|cc:|copied|copying|loop in|looping in|looped in|bringing in|adding"
    r"|forwarding|forwarded|introducing|introduce you)",
    r"(?:my|our) (?:colleague|coworker|co-worker|boss|manager|head of|cto|ceo|cfo|vp|director)",
    r"(?:she|he|they)(?:'s| is| are| handles| owns| manages| runs| leads| would be| will be| can)",
    r"(?:right|best|better) (?:person|contact|fit|one)",
    r"(?:handles|owns|manages|in charge of|responsible for|looks after)",
    # de
    r"wenden sie sich",
    r"(?:kontaktieren|schreiben|fragen) sie",
    r"(?:melden|wenden) sie sich (?:bitte |gerne )?(?:bei|an)",
    r"(?:mein|meine|unser|unsere) (?:kollege|kollegin|chef|chefin|leiter|leiterin)",
    r"(?:ansprechpartner|ansprechpartnerin|zustandig) (?:ist|ware|dafur|hierfur)",
    r"(?:in kopie|in cc|cc gesetzt|weitergeleitet)",
    r"(?:sprechen|reden) sie (?:mit|bitte mit)",
    # fr
    r"(?:contactez|contacter|ecrivez a|ecrire a|adressez-vous a|voyez avec|voir avec|rapprochez-vous"
    r"|joindre|joignez)",
    r"(?:mon|ma|notre) (?:collegue|collaborateur|collaboratrice|responsable|directeur|directrice)",
    r"(?:en copie|je mets|j'ai mis|je transfere|j'ai transfere)",
    r"(?:s'occupe|gere|est en charge|est responsable|s'en occupe)",
    r"(?:bon|bonne) (?:interlocuteur|interlocutrice|personne) (?:est|serait)",
    # es
    r"(?:contacta|contacte|contactar|contactad|escribe a|escriba a|escribir a|habla con|hable con"
    r"|hablar con|dirijase a|dirigete a|ponte en contacto|pongase en contacto)",
    r"(?:mi|nuestra|nuestro) (?:companer[oa]|colega|responsable|jef[ea]|director[a]?)",
    r"(?:en copia|te copio|le copio|pongo en copia|copio a|reenvio|he reenviado)",
    r"(?:se encarga|lleva|gestiona|es responsable|es quien)",
)
# A referral to a named colleague without an address ("talk to my colleague Jane").
REFERRAL_NAMED = _cues(
    r"(?:talk|speak|reach out|check|get in touch|connect|chat) (?:to|with) (?:my|our) (?:colleague|coworker|boss|manager|head of \w+|cto"
    r"|ceo|cfo|vp of \w+)",
    r"(?:my|our) (?:colleague|coworker) [a-z]+ (?:handles|owns|manages|runs|looks after|is "
    r"(?:responsible|in charge|the right))",
    r"wenden sie sich (?:bitte |gerne )?an (?:meine|meinen|unsere|unseren) (?:kollegin|kollegen)",
    r"(?:sprechen|reden) sie (?:bitte |gerne )?mit (?:meinem|meiner|unserem|unserer) (?:kollegen"
    r"|kollegin|chef|chefin)",
    r"(?:contactez|voyez avec|voir avec) (?:plutot )?(?:mon|ma|notre) (?:collegue|responsable)",
    r"(?:habla|hable|hablar) con (?:mi|nuestra|nuestro) (?:companer[oa]|colega|responsable)",
)

NOT_NOW_STRONG = _cues(
    # en
    r"(?:reach|circle|check|come|get|touch|loop back|ping|follow|revisit|reconnect|try|contact"
    r"|email|write)(?: (?:me|us|back|base|up|out|again|this|it|in touch|with me|with us)){0,3}"
    r" (?:in(?! touch with| with)|after|next|around|closer to|early|later|once|towards|toward"
    r"|at the end of|from|by|mid|end of|the week of|again in|again after)",
    r"circle back",
    r"(?:maybe|perhaps|possibly|probably|try again|ask again|ask me|check back) (?:later|next|in|"
    r"after|again)",
    r"later (?:this|in the|next) (?:year|quarter|month|spring|summer|fall|autumn)",
    r"(?:next|following|coming) (?:quarter|year|fiscal|financial year|month|budget cycle|fy)",
    r"q[1-4](?: ?(?:20)?\d\d)?",
    r"(?:first|second|third|fourth|1st|2nd|3rd|4th|last) quarter",
    r"h[12] (?:20)?\d\d",
    r"(?:after|until|past|once) (?:the |our )?(?:" + EVENTS + r"|" + MONTHS + r")",
    r"(?:in|from|around|early|mid|late|end of|start of|beginning of) (?:" + MONTHS + r")",
    r"in (?:a|one|two|three|four|five|six|a few|a couple of|\d+|several) (?:weeks|months|years)",
    r"(?:not|nothing) (?:before|until)",
    r"pas avant",
    r"nicht vor",
    r"no antes de",
    r"(?:revisit|reconsider|look at) (?:this|it) (?:in|after|next|later)",
    r"(?:keep|stay) in touch",
    # de
    r"(?:im|in|ab|nach|zum|bis zum|bis|anfang|mitte|ende) (?:dem |den |der )?(?:nachsten|kommenden"
    r"|neuen) (?:quartal|jahr|monat|geschaftsjahr|jahres)",
    r"(?:nachstes|kommendes|im neuen) (?:jahr|quartal|geschaftsjahr)",
    r"(?:nachsten|kommenden) (?:monat|quartal|herbst|sommer|fruhling|fruhjahr)",
    r"(?:im|ab dem|nach dem) (?:ersten|zweiten|dritten|vierten|[1-4]\.) quartal",
    r"zu einem spateren zeitpunkt",
    r"erst (?:im|in|ab|nach|zum|wieder|nachstes|nachsten|kommendes)",
    r"(?:spater|nochmals|nochmal|noch einmal|erneut|wieder) (?:im|in|nach|ab|melden|kontaktieren"
    r"|auf mich|auf uns|zuruck|ansprechen)",
    r"(?:melden|kommen) sie (?:sich )?(?:gerne |bitte |doch )?(?:nochmal|noch einmal|wieder|erneut"
    r"|im|nach|in|ab|spater)",
    r"(?:nach|bis nach|ab|vor) (?:" + EVENTS + r"|dem sommer|den sommerferien|der sommerpause"
    r"|der messe|dem umzug|dem launch|den feiertagen|(?:dem |den )?\d{1,2}\.(?:\d{1,2}\.?)?)",
    r"(?:im|ab|nach|anfang|mitte|ende) (?:" + MONTHS + r")",
    r"in (?:ein paar|einigen|einem|einer|zwei|drei|vier|sechs|\d+) (?:wochen|monaten|monat|woche"
    r"|jahr)",
    # fr
    r"plus tard",
    r"(?:a|apres|des|pour) la rentree",
    r"(?:en )?(?:reparler|reparlerons|reparlons|reparle|rediscuter|rediscuterons)",
    r"(?:l'annee|le mois|le trimestre|l'exercice) (?:prochain|prochaine)",
    r"(?:prochain|prochaine) (?:trimestre|annee|exercice|mois)",
    r"(?:recontactez|relancez|revenez vers|recontacter|relancer|revenir vers|reprendre contact|"
    r"reparler|recontacte)(?:-moi|-nous| moi| nous)?",
    r"(?:au|d'ici le|des le|a partir du|apres le) (?:premier|deuxieme|second|troisieme|quatrieme|1er"
    r"|2e|3e|4e|dernier) trimestre",
    r"(?:apres|a partir de|des|d'ici|avant) (?:le |la |l'|les )?(?:" + EVENTS + r"|vacances|"
    + MONTHS + r"|\d{1,2})",
    r"(?:en|courant|debut|mi-|mi |fin) (?:" + MONTHS + r")",
    r"dans (?:un|une|deux|trois|quatre|six|quelques|\d+) (?:semaines|mois|ans|an)",
    # es
    r"mas adelante",
    r"(?:el|al) (?:proximo|siguiente) (?:trimestre|ano|mes|ejercicio)",
    r"(?:el|al) (?:ano|mes|trimestre) (?:que viene|proximo|siguiente)",
    r"(?:vuelve|vuelva|volver|contacta|contacte|contactame|contacteme|escribe|escriba|escribeme"
    r"|escribame|retomar|retomemos|hablemos)(?: a)?(?: (?:a )?(?:contactar|escribir|hablar|ponerte"
    r"|ponerse))?(?:me|nos)? (?:en|despues|a partir|dentro|mas adelante|de nuevo|hacia|a finales"
    r"|a principios|a mediados)",
    r"(?:en el|el|para el|a partir del) (?:primer|segundo|tercer|cuarto|ultimo) trimestre",
    r"(?:despues|a partir|antes) (?:de|del) (?:la |el |los |las )?(?:" + EVENTS + r"|" + MONTHS
    + r"|\d{1,2})",
    r"(?:en|a principios de|a mediados de|a finales de|principios de|mediados de|finales de) (?:"
    + MONTHS + r")",
    r"dentro de (?:un|una|unos|unas|dos|tres|cuatro|seis|\d+) (?:semanas|meses|ano)",
    r"en (?:un|una|unos|unas|dos|tres|cuatro|seis|\d+) (?:semanas|meses)",
)
NOT_INTERESTED = _cues(
    # en
    r"not (?:really |at all |currently |actually )?interested",
    r"no (?:real )?interest",
    r"no,? thanks?",
    r"no,? thank you",
    r"not (?:a |the )?(?:good |right )?fit",
    r"not for (?:us|me)",
    r"(?:we're|we are|i'm|i am) (?:happy|all set|good|covered|set|satisfied|fine) with",
    r"(?:we|i) (?:already|currently) (?:use|have|work with|signed|partner|run|rely on|pay for)",
    r"already (?:using|have a|signed|working with|partnered|invested)",
    r"(?:please )?(?:don't|do not|stop) (?:contact|email|e-mail|reach|message|bother|writ)(?:ing"
    r"|e)?",
    r"(?:isn't|is not|not) something (?:we'd|we would|we|i'd|i would|i) (?:use|need|want|buy)",
    r"(?:i'd|i would|we'd|we would) rather not",
    r"nope",
    r"take (?:me|us) off",
    r"not (?:looking|in the market|something we need|needed|a priority for us)",
    r"(?:we'll|we will|i'll|i will|going to) pass",
    r"(?:signed|went|gone|going|decided to go) with (?:a|another|one of your) (?:competitor|vendor"
    r"|provider|solution)",
    r"so no",
    r"(?:we|i) (?:don't|do not) need",
    r"no need for",
    r"(?:we're|we are) not (?:going to|looking|buying|in the market)",
    r"(?:i'll|we'll|i will|we will) (?:have to )?(?:decline|pass)",
    r"(?:have|has) no (?:need|use|budget)",
    # de
    r"kein(?:e|en)? (?:interesse|bedarf)",
    r"nicht interessiert",
    r"nein,? danke",
    r"(?:brauchen|benotigen) (?:wir |ich )?(?:das |so etwas |sowas |derzeit |aktuell )?(?:nicht"
    r"|keine|kein)",
    r"(?:sind|bin) (?:bereits |schon )?(?:gut )?(?:versorgt|zufrieden|aufgestellt)",
    r"(?:gut|bestens|bereits|schon) (?:versorgt|aufgestellt)",
    r"(?:wollen|mochten|werden) (?:nicht|keinen?) (?:wechseln|anbieter wechseln|wechsel)",
    r"(?:haben|nutzen|verwenden|arbeiten) (?:bereits|schon)",
    r"(?:bitte )?(?:kontaktieren|schreiben) sie (?:mich|uns) nicht",
    r"bitte (?:keine (?:weiteren )?(?:e-mails|mails|nachrichten)|nicht mehr (?:kontaktieren"
    r"|schreiben|anschreiben))",
    r"kein thema fur uns",
    r"(?:wir )?verzichten",
    r"(?:streichen|loschen|entfernen) sie (?:mich|uns|meine adresse)",
    r"(?:ist|sind) (?:das |fur uns |hier )*nicht relevant",
    r"passt (?:das |leider |einfach |uberhaupt )*nicht",
    # fr
    r"(?:pas|plus) interesse(?:s|e|es)?",
    r"(?:pas|aucun) (?:d')?interet",
    r"non,? merci",
    r"(?:ne|n') (?:m'|nous )?interesse pas",
    r"(?:avons|ai|disposons|utilisons|travaillons) (?:deja|avec un)",
    r"(?:n'avons|n'ai) pas besoin",
    r"pas besoin",
    r"ne (?:me|nous) (?:contactez|recontactez|sollicitez|ecrivez) plus",
    r"pas pour nous",
    r"(?:je|nous) (?:decline|declinons)",
    r"(?:retirer|retirez|supprimer|supprimez|enlever|enlevez) (?:mon adresse|moi|mon contact|nous)",
    r"(?:nous ne sommes|je ne suis) pas (?:a la recherche|preneur|preneurs)",
    # es
    r"no (?:me|nos) interesa",
    r"no (?:estoy|estamos) interesad[oa]s?",
    r"no,? gracias",
    r"ya (?:tenemos|usamos|utilizamos|contamos|trabajamos|disponemos)",
    r"no (?:lo |la )?necesitamos",
    r"no (?:me|nos) (?:contacte|contactes|escriba|escribas|vuelva|vuelvas)",
    r"sin interes",
    r"(?:eliminenme|elimineme|eliminame|eliminadme|borrenme|borreme|borrame|quitenme|quiteme"
    r"|sacadme|sacame) (?:de|del)",
    r"no es para nosotros",
    r"no (?:estamos|estoy) buscando",
)
NOT_NOW_WEAK = _cues(
    # en
    r"not (?:right )?now",
    r"not at (?:the|this) (?:moment|time|point|stage)",
    r"not (?:a )?(?:priority|the right time|a good time|the best time)",
    r"(?:bad|poor|wrong) timing",
    r"timing (?:isn't|is not|is) (?:right|great|ideal|off|bad)",
    r"(?:too )?(?:busy|swamped|slammed) (?:right now|at the moment|this|with|until|for)",
    r"(?:no|zero) (?:budget|bandwidth|capacity) (?:this|right now|at the moment|for now|until|left)",
    r"budget (?:is )?(?:frozen|freeze|locked|spent)",
    r"(?:maybe|perhaps) later",
    r"down the (?:road|line)",
    r"not yet",
    # de
    r"(?:aktuell|derzeit|momentan|im moment|gerade|zurzeit|zur zeit) (?:leider )?(?:nicht|kein"
    r"|keine|schlecht|ungunstig|zu viel)",
    r"(?:zeitpunkt|timing) (?:ist )?(?:leider )?(?:ungunstig|schlecht|nicht passend|passt nicht)",
    r"(?:gerade|aktuell) (?:keine|kein) (?:zeit|kapazitat|budget)",
    r"spater",
    # fr
    r"pas (?:pour )?(?:le moment|l'instant|maintenant|tout de suite)",
    r"pas le bon moment",
    r"(?:mauvais|pas le bon) timing",
    r"(?:actuellement|en ce moment) (?:pas|trop|aucun)",
    # es
    r"(?:ahora|en este momento|por ahora|de momento|ahora mismo|por el momento) no",
    r"no es (?:un |el )?(?:buen|mejor) momento",
    r"no (?:en este momento|por ahora|de momento|ahora)",
)
POSITIVE = _cues(
    # en
    r"interested",
    r"sounds (?:good|great|interesting|promising|like a plan|fine|perfect)",
    r"(?:let's|lets|let us) (?:talk|chat|connect|set up|schedule|do it|find|book|meet|hop|jump|get"
    r"|discuss|set|go)",
    r"(?:happy|glad|open|keen|love|would love|i'd love|i'd like|i would like|want|like) to (?:chat"
    r"|talk|connect|learn|hear|meet|see|take a look|jump|hop|discuss|explore|try|get)",
    r"(?:book|schedule|set up|grab|find|arrange) (?:a|some|time|a time|the) ?(?:call|time|meeting"
    r"|demo|chat|slot)?",
    r"(?:send|share|forward) (?:me |us |over )?(?:more|some|the|a|your) (?:info|information"
    r"|details|pricing|deck|case stud(?:y|ies)|one-pager|overview|brochure|link)",
    r"(?:how much|what (?:does|do|would) .{1,30} cost|pricing)",
    r"(?:are you|you) (?:free|available)",
    r"(?:what|which) (?:time|times|day|days|slots) (?:work|suit|are good)",
    r"calendar (?:link|invite)",
    r"tell me more",
    r"(?:works|work) for (?:me|us)",
    r"count (?:me|us) in",
    r"(?<!not )(?<!n't )(?:yes|yeah|yep|sure|absolutely|definitely|of course)(?: please)?"
    r"(?:[,.!]| |$)",
    r"talk soon",
    r"demo",
    r"curious",
    r"(?:monday|tuesday|wednesday|thursday|friday|tomorrow|today)(?: morning| afternoon)? (?:at|works"
    r"|after|before|between|around) ?\d",
    r"(?:can|could|shall) we (?:find|grab|set up|schedule|meet|talk|chat|hop on|jump on|book)",
    r"(?:could|can|shall) (?:you|we) do (?:monday|tuesday|wednesday|thursday|friday|tomorrow)",
    r"worth a (?:chat|call|look|conversation)",
    # de
    r"(?:klingt|hort sich|liest sich) (?:sehr )?(?:gut|interessant|spannend|vielversprechend)",
    r"gerne",
    r"(?:bin|sind) (?:sehr )?interessiert",
    r"interesse (?:haben wir|habe ich|ist da|an einem|an|besteht)",
    r"(?:lassen sie uns|lass uns|konnen wir) (?:gerne )?(?:sprechen|telefonieren|reden|austauschen"
    r"|einen termin)",
    r"termin",
    r"(?:schicken|senden) sie (?:mir|uns) (?:gerne |bitte )?(?:mehr|weitere|unterlagen|infos"
    r"|informationen|details|ein angebot)",
    r"(?:wann|welche zeit|welcher tag) (?:passt|haben sie|hatten sie)",
    r"telefonat",
    r"(?:konnen|konnten|wurden) sie (?:mir|uns) .{0,40}(?:schicken|senden|zusenden|zukommen lassen)",
    r"(?:das )?passt (?:sehr |ganz )?gut",
    r"(?:montag|dienstag|mittwoch|donnerstag|freitag|morgen) (?:um|ab|zwischen|gegen|vormittag"
    r"|nachmittag)",
    r"(?:ja|klar|selbstverstandlich)[,.! ]",
    # fr
    r"(?:ca|cela) (?:m'interesse|nous interesse|a l'air|me parle)",
    r"(?:m'interesse|nous interesse)",
    r"interesse(?:s|e|es)? par",
    r"(?:je suis|nous sommes) (?:interesse|partant|curieux|ouvert)",
    r"volontiers",
    r"avec plaisir",
    r"(?:envoyez|envoyer|transmettez)(?:-moi|-nous| moi| nous)? (?:plus|des|de la|la|votre|une)",
    r"(?:appel|rendez-vous|rdv|reunion|visio|echange|creneau|creneaux)",
    r"(?:quand|quelles) (?:etes-vous|disponibilites|sont vos)",
    r"pourquoi pas",
    r"interessant",
    r"(?:lundi|mardi|mercredi|jeudi|vendredi|demain) (?:a|vers|entre|matin|apres-midi) ?\d",
    r"(?:oui|d'accord|bien sur)[,.! ]",
    # es
    r"(?:me|nos) interesa",
    r"(?:estoy|estamos) interesad[oa]s?",
    r"(?:me|nos) parece (?:muy )?(?:interesante|bien|buena idea)",
    r"(?:podemos|podriamos|puedes|podrias) (?:hablar|vernos|llamarnos|quedar|agendar|tener)",
    r"cuentame mas",
    r"suena (?:bien|interesante|genial|muy bien)",
    r"(?:claro|por supuesto|con gusto|encantad[oa]|perfecto)",
    r"(?:hablemos|llamada|reunion|videollamada|cita|agendar|agendemos)",
    r"(?:envia|envie|envieme|enviame|mandame|mandeme|manda|mande)(?:nos)? (?:mas|informacion|info"
    r"|detalles|la propuesta|precios)",
    r"(?:cuando|que dia|que hora) (?:te|le|os) (?:viene|va|vendria|iria)",
    r"(?:si|vale)[,.! ]",
    r"(?:el )?(?:lunes|martes|miercoles|jueves|viernes|manana) (?:a las|sobre las|por la|entre)",
)
