"""Fixed vocabularies of the demo world: names, places, products, stores and phrases."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    """Where a person lives: how names, phones, money and addresses look there."""

    code: str
    locale: str
    currency: str
    weight: int
    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]
    cities: tuple[tuple[str, str, str], ...]  # (city, region, postcode prefix)
    streets: tuple[str, ...]
    phone_prefix: str  # E.164 prefix of mobile numbers
    phone_digits: int  # digits that follow the prefix
    rate: float  # units of this currency per euro


def _list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _cities(text: str) -> tuple[tuple[str, str, str], ...]:
    out = []
    for entry in text.split(";"):
        city, region, prefix = (part.strip() for part in entry.split("/"))
        out.append((city, region, prefix))
    return tuple(out)


def _country(spec: str, **texts: str) -> Country:
    """``spec``: "GB en-GB GBP weight=40 phone=+447700+6d per-euro=0.86"."""
    code, locale, currency, weight, phone, rate = spec.split()
    prefix, digits = phone.removeprefix("phone=").rsplit("+", 1)
    return Country(
        code, locale, currency, int(weight.removeprefix("weight=")), _list(texts["female"]),
        _list(texts["male"]), _list(texts["last"]), _cities(texts["cities"]), _list(texts["streets"]),
        prefix, int(digits.removesuffix("d")), float(rate.removeprefix("per-euro=")),
    )  # fmt: skip


COUNTRIES: tuple[Country, ...] = (
    _country(
        "GB en-GB GBP weight=40 phone=+447700+6d per-euro=0.86",
        female="Zoë, Olivia, Amelia, Isla, Ava, Grace, Freya, Sophie, Chloë, Poppy, Ruth, Harriet, Imogen, "
        "Niamh, Priya, Aisha, Megan, Eleanor, Beatrice, Renée",
        male="Oliver, George, Harry, Noah, Jack, Arthur, Thomas, Rhys, Callum, Dylan, Mohammed, Rajesh, "
        "Owen, Alfie, Edward, Samuel, Rory, Hamish, Gethin, Kwame",
        last="Smith, Jones, Taylor, Brown, Williams, Wilson, Johnson, Davies, Patel, Evans, Thomas, Roberts, "
        "Walker, Wright, Hughes, Clarke, Khan, Ó Briain, McAllister, Fitzgerald, Okafor, "
        "Bennett, Harrison, Lloyd",
        cities="Manchester/Greater Manchester/M; Leeds/West Yorkshire/LS; Bristol/Bristol/BS; "
        "Edinburgh/Scotland/EH; Cardiff/Wales/CF; London/Greater London/SE; Birmingham/West Midlands/B; "
        "Norwich/Norfolk/NR",
        streets="High Street, Station Road, Church Lane, Victoria Road, Mill Lane, Park Avenue, "
        "Queen's Road, The Crescent, Albert Street, Beech Grove",
    ),
    _country(
        "DE de-DE EUR weight=15 phone=+49151+8d per-euro=1.0",
        female="Anna, Lena, Sophie, Marie, Hannah, Jana, Käthe, Greta, Ursula, Lea",
        male="Lukas, Jonas, Felix, Maximilian, Jürgen, Björn, Tobias, Matthias, Uwe, Günter",
        last="Müller, Schmidt, Schneider, Fischer, Weber, Schröder, Becker, Hoffmann, Koch, Böhm, Wagner, "
        "Krüger, Weiß",
        cities="Berlin/Berlin/10; Hamburg/Hamburg/20; München/Bayern/80; Köln/Nordrhein-Westfalen/50; "
        "Leipzig/Sachsen/04",
        streets="Hauptstraße, Schulstraße, Gartenweg, Bahnhofstraße, Lindenallee, Am Markt",
    ),
    _country(
        "FR fr-FR EUR weight=10 phone=+336+8d per-euro=1.0",
        female="Chloé, Léa, Manon, Camille, Inès, Hélène, Margaux, Anaïs, Céline",
        male="François, Lucas, Hugo, Théo, Jérôme, Mathis, Noël, Loïc, Benoît",
        last="Martin, Bernard, Dubois, Lefèvre, Moreau, Laurent, Girard, Mercier, Rousseau",
        cities="Paris/Île-de-France/750; Lyon/Auvergne-Rhône-Alpes/690; Lille/Hauts-de-France/590; "
        "Nantes/Pays de la Loire/440",
        streets="rue de la Paix, avenue Jean Jaurès, rue Victor Hugo, boulevard Voltaire, place du Marché",
    ),
    _country(
        "NL nl-NL EUR weight=8 phone=+316+8d per-euro=1.0",
        female="Emma, Sanne, Fleur, Anouk, Femke, Lotte, Iris, Noor",
        male="Daan, Sem, Bram, Joost, Thijs, Ruben, Sven, Pieter",
        last="de Jong, Jansen, de Vries, van den Berg, Bakker, Visser, Smit, Meijer, de Groot",
        cities="Amsterdam/Noord-Holland/10; Utrecht/Utrecht/35; Rotterdam/Zuid-Holland/30",
        streets="Kerkstraat, Dorpsstraat, Molenweg, Prinsengracht, Stationsplein",
    ),
    _country(
        "SE sv-SE SEK weight=6 phone=+4670+7d per-euro=11.4",
        female="Åsa, Linnéa, Maja, Elsa, Saga, Ingrid, Märta",
        male="Björn, Erik, Lars, Anders, Oskar, Måns, Nils",
        last="Andersson, Johansson, Karlsson, Nilsson, Ångström, Lindqvist, Sjöberg, Öberg",
        cities="Stockholm/Stockholms län/11; Göteborg/Västra Götaland/41; Malmö/Skåne/21",
        streets="Storgatan, Drottninggatan, Kyrkogatan, Skolvägen",
    ),
    _country(
        "PL pl-PL PLN weight=7 phone=+485+8d per-euro=4.3",
        female="Małgorzata, Agnieszka, Zofia, Żaneta, Katarzyna, Joanna, Ewa",
        male="Łukasz, Paweł, Michał, Krzysztof, Wojciech, Jędrzej, Tomasz",
        last="Nowak, Kowalski, Wiśniewski, Wójcik, Kamiński, Lewandowski, Zieliński, Dąbrowski",
        cities="Warszawa/mazowieckie/00; Kraków/małopolskie/30; Gdańsk/pomorskie/80",
        streets="ul. Długa, ul. Kwiatowa, ul. Słoneczna, ul. Polna, ul. Lipowa",
    ),
    _country(
        "IE en-IE EUR weight=6 phone=+35387+7d per-euro=1.0",
        female="Siobhán, Aoife, Saoirse, Niamh, Ciara, Orla, Róisín",
        male="Seán, Cian, Oisín, Pádraig, Darragh, Eoin, Conor",
        last="Murphy, Kelly, O'Sullivan, Walsh, O'Brien, Byrne, Ó Ceallaigh, Ryan",
        cities="Dublin/Leinster/D0; Cork/Munster/T12; Galway/Connacht/H91",
        streets="Main Street, Church Road, Strand Road, Meadow Lane",
    ),
    _country(
        "DK da-DK DKK weight=5 phone=+4520+6d per-euro=7.46",
        female="Freja, Ida, Mette, Sofie, Astrid, Signe",
        male="Søren, Mads, Rasmus, Jens, Frederik, Anders",
        last="Nielsen, Jensen, Hansen, Pedersen, Nørgaard, Sørensen, Kjær, Møller",
        cities="København/Hovedstaden/2; Aarhus/Midtjylland/8; Odense/Syddanmark/5",
        streets="Østergade, Vestergade, Nørrebrogade, Strandvejen",
    ),
    _country(
        "ES es-ES EUR weight=3 phone=+346+8d per-euro=1.0",
        female="María, Lucía, Inés, Begoña, Nuria, Ángela",
        male="José, Javier, Álvaro, Iñigo, Sergio, Raúl",
        last="García, Fernández, López, Martínez, Núñez, Muñoz, Peña",
        cities="Madrid/Comunidad de Madrid/280; Barcelona/Cataluña/080; Bilbao/País Vasco/480",
        streets="Calle Mayor, Avenida de la Constitución, Calle del Sol, Paseo del Prado",
    ),
)

MIDDLE_NAMES: tuple[str, ...] = ("Anne", "Marie", "James", "Louise", "John", "Elisabeth", "Maria", "Peter")

EMAIL_DOMAINS: tuple[str, ...] = (
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
    "post.example.net",
    "inbox.example.org",
)

COMPANIES: tuple[str, ...] = (
    "Northwind Laundrettes",
    "Bluebell Care Homes",
    "Harbour Hotels",
    "Kestrel Facilities",
    "Greenleaf Student Lets",
    "Alder & Ash Interiors",
    "Meridian Gyms",
    "Tidewater Holiday Parks",
    "Copperfield Dental",
    "Foxglove Nurseries",
    "Lindqvist Fastigheter",
    "Bäckerei Sonnenschein",
)

JOB_TITLES: tuple[str, ...] = (
    "Facilities Manager",
    "Office Manager",
    "Procurement Lead",
    "Owner",
    "Operations Director",
    "Head of Housekeeping",
    "Purchasing Assistant",
    "Finance Manager",
)

AGENTS: tuple[str, ...] = ("agent-amira", "agent-ben", "agent-carla", "agent-dev", "agent-elif", "agent-finn")


@dataclass(frozen=True)
class Product:
    """Something the retailer sells; appliances of a known kind can be registered as devices."""

    sku: str
    name: str
    price_eur: float
    zone: str
    device_kind: str | None

    @property
    def path(self) -> str:
        slug = "-".join("".join(c if c.isalnum() else " " for c in self.name.lower()).split())
        return f"/p/{slug}-{self.sku.lower()}"


# (zone, device kind, price range in euro, name stems, variants)
_RANGES: tuple[tuple[str, str | None, float, float, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "womenswear",
        None,
        19,
        149,
        (
            "Linen shirt dress",
            "Merino roll-neck",
            "Wide-leg trousers",
            "Quilted jacket",
            "Cotton midi skirt",
            "Cashmere cardigan",
        ),
        ("navy", "sage", "oat", "black", "rust"),
    ),
    (
        "menswear",
        None,
        19,
        179,
        (
            "Oxford shirt",
            "Chino trousers",
            "Waxed jacket",
            "Lambswool jumper",
            "Slim-fit jeans",
            "Rain parka",
        ),
        ("navy", "olive", "stone", "charcoal"),
    ),
    (
        "shoes",
        None,
        39,
        159,
        ("Leather trainers", "Chelsea boots", "Canvas plimsolls", "Walking boots", "Suede loafers"),
        ("tan", "black", "white", "brown"),
    ),
    (
        "kids",
        None,
        9,
        59,
        ("School jumper", "Puddle suit", "Dinosaur pyjamas", "Fleece hoodie"),
        ("red", "blue", "yellow"),
    ),
    ("appliances", "washing_machine", 349, 899, ("Aurora washing machine",), ("8 kg", "9 kg", "10 kg")),
    ("appliances", "dishwasher", 329, 799, ("Tidal dishwasher",), ("45 cm", "60 cm", "integrated")),
    ("appliances", "fridge", 399, 1299, ("Glacier fridge freezer",), ("70/30", "50/50", "American-style")),
    ("appliances", "thermostat", 129, 249, ("Hearth smart thermostat",), ("gen 2", "gen 3")),
    (
        "kitchen",
        None,
        15,
        249,
        ("Stand mixer", "Kettle", "Toaster", "Cast-iron casserole", "Knife block"),
        ("cream", "steel", "sage"),
    ),
    (
        "home",
        None,
        9,
        199,
        ("Duvet cover set", "Bath towel", "Table lamp", "Linen cushion", "Wool throw"),
        ("white", "grey", "ochre"),
    ),
)


def _build_products() -> tuple[Product, ...]:
    products: list[Product] = []
    number = 10_000
    for zone, kind, low, high, stems, variants in _RANGES:
        for s_index, stem in enumerate(stems):
            for v_index, variant in enumerate(variants):
                number += 7
                span = high - low
                # Deterministic spread of prices across the range, ending in .99 or .00.
                step = ((s_index * 7 + v_index * 3) % 10) / 9
                price = round(low + span * step) - (0.01 if (s_index + v_index) % 3 else 0.0)
                products.append(
                    Product(f"RP-{number}", f"{stem}, {variant}", round(max(price, 4.99), 2), zone, kind)
                )
    return tuple(products)


PRODUCTS: tuple[Product, ...] = _build_products()
CLOTHING: tuple[Product, ...] = tuple(
    p for p in PRODUCTS if p.zone in {"womenswear", "menswear", "shoes", "kids"}
)
HOUSEHOLD: tuple[Product, ...] = tuple(p for p in PRODUCTS if p.zone in {"kitchen", "home"})
APPLIANCES: tuple[Product, ...] = tuple(p for p in PRODUCTS if p.device_kind is not None)

STORE_PLACES: tuple[tuple[str, str], ...] = (
    ("Manchester Arndale", "Manchester"),
    ("Leeds Trinity", "Leeds"),
    ("Bristol Cabot Circus", "Bristol"),
    ("Edinburgh Princes Street", "Edinburgh"),
    ("London Southbank", "London"),
    ("Berlin Mitte", "Berlin"),
    ("Dublin Grafton Street", "Dublin"),
    ("Amsterdam Kalverstraat", "Amsterdam"),
    ("Cardiff St David's", "Cardiff"),
    ("Birmingham Bullring", "Birmingham"),
)
STORE_ZONES: tuple[str, ...] = (
    "womenswear",
    "menswear",
    "shoes",
    "kids",
    "appliances",
    "kitchen",
    "home",
    "cafe",
)

PAGES: tuple[tuple[str, str], ...] = (
    ("/", "Home"),
    ("/c/womenswear", "Womenswear"),
    ("/c/menswear", "Menswear"),
    ("/c/shoes", "Shoes"),
    ("/c/appliances", "Appliances"),
    ("/c/kitchen", "Kitchen"),
    ("/c/home", "Home & living"),
    ("/sale", "Sale"),
    ("/stores", "Find a store"),
    ("/help/delivery", "Delivery & returns"),
    ("/search?q=washing+machine", "Search results"),
    ("/search?q=boots", "Search results"),
    ("/basket", "Your basket"),
    ("/account/orders", "Your orders"),
    ("/blog/spring-edit", "The spring edit"),
)
REFERRERS: tuple[str, ...] = (
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://www.instagram.com/",
    "https://t.co/",
    "https://news.example.org/review",
    "",
)

NEWSLETTERS: tuple[str, ...] = (
    "New in: the spring edit",
    "Up to 30% off laundry appliances",
    "Your weekend reads from Rapport Home",
    "Last chance: mid-season sale",
    "Members' evening at your local store",
    "Five ways to cut your energy bill",
    "Linen season is here",
    "Back to school, sorted",
)

CASE_TOPICS: dict[str, tuple[tuple[str, str], ...]] = {
    "complaint": (
        ("Parcel arrived damaged", "The box was crushed and the {item} inside is scratched."),
        ("Late delivery", "I was promised delivery on Tuesday and nothing has arrived for order {order}."),
        ("Wrong size sent", "I ordered a medium and received an XL."),
        ("Rude delivery driver", "The driver left the parcel in the rain and would not wait."),
    ),
    "question": (
        ("Can I change my delivery slot?", "Is it possible to move delivery of {order} to Saturday?"),
        ("Do you price match?", "I saw the {item} cheaper elsewhere, do you price match?"),
        ("Gift wrapping", "Can you gift wrap the {item} and add a note?"),
        ("Installation booking", "When can someone install the {item}?"),
    ),
    "service_outage": (
        ("Machine shows error E21", "My {item} stopped mid-cycle with error E21 and will not drain."),
        ("App cannot reach appliance", "Since the firmware update the app says my {item} is offline."),
        ("Fridge not cooling", "The {item} has been warm since last night."),
    ),
    "return": (
        ("Return request", "I would like to return the {item}, it does not fit."),
        ("Refund not received", "I returned {order} two weeks ago and have not had my refund."),
    ),
    "other": (("Update my details", "Please update my phone number on file."),),
}

RESOLUTIONS: tuple[str, ...] = (
    "Replacement sent by next-day courier.",
    "Refund issued to the original card.",
    "Engineer visit booked and fault fixed.",
    "Answered the question; customer happy.",
    "Goodwill voucher of 20 applied.",
    "Firmware reinstalled remotely.",
    "Customer stopped replying.",
)

SOCIAL_POSTS: tuple[tuple[str, str], ...] = (
    ("Absolutely love my new {item} from @RapportHome, best buy this year", "positive"),
    ("@RapportHome third time asking, where is my order?? #customerservice", "negative"),
    ("Popped into @RapportHome {city} today, the cafe does a great flat white", "positive"),
    ("Anyone tried the {item} from @RapportHome? Worth it?", "neutral"),
    ("@RapportHome your app keeps logging me out", "negative"),
    ("The {item} is decent but delivery took ages @RapportHome", "mixed"),
    ("Big thanks to the team at @RapportHome {city} for sorting my return so quickly", "positive"),
)

FEEDBACK_COMMENTS: tuple[tuple[str, int], ...] = (
    ("Quick delivery, lovely quality.", 9),
    ("Good, but the packaging was excessive.", 7),
    ("Item was fine, the checkout kept failing though.", 6),
    ("Never arrived. Very disappointed.", 1),
    ("Staff in store were really helpful.", 10),
    ("Had to chase twice to get an answer.", 3),
    ("", 8),
    ("Fair prices, would buy again.", 8),
)

CANCEL_REASONS: tuple[str, ...] = (
    "Found it cheaper elsewhere.",
    "Ordered the wrong size by mistake.",
    "Delivery date too late for me.",
    "Payment declined.",
    "Changed my mind.",
)
